// Lists snapshots one page at a time.
//
//   list_snapshots [PAGE [LIMIT]]
#include <iostream>
#include <string>

#include <cairn/cairn.h>

int main(int argc, char** argv) {
  try {
    const long page = argc > 1 ? std::stol(argv[1]) : 1;
    const long limit = argc > 2 ? std::stol(argv[2]) : 10;
    cairn::Daytona daytona;
    cairn::PaginatedSnapshots result = daytona.snapshot.list(page, limit);
    std::cout << "page " << result.page << " of " << result.totalPages << ", " << result.total
              << " snapshots\n";
    for (const cairn::Snapshot& s : result.items)
      std::cout << "  " << s.name << "  " << s.state.str() << "\n";
    return 0;
  } catch (const std::invalid_argument&) {
    std::cerr << "usage: list_snapshots [PAGE [LIMIT]] (numbers)\n";
    return 2;
  } catch (const cairn::DaytonaError& e) {
    std::cerr << "list failed: " << e.what() << "\n";
    return 1;
  }
}
