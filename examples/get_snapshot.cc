// Looks a snapshot up by name (or id) and prints what the server knows about it.
//
//   get_snapshot NAME
#include <iostream>

#include <cairn/cairn.h>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: get_snapshot NAME\n";
    return 2;
  }
  try {
    cairn::Daytona daytona;
    cairn::Snapshot snapshot = daytona.snapshot.get(argv[1]);
    std::cout << snapshot.name << " (" << snapshot.id << "): " << snapshot.state.str() << ", "
              << snapshot.cpu << " cpu, " << snapshot.mem << " GB memory, " << snapshot.disk
              << " GB disk\n";
    return 0;
  } catch (const cairn::DaytonaNotFoundError& e) {
    std::cerr << "no such snapshot: " << e.what() << "\n";
    return 1;
  } catch (const cairn::DaytonaError& e) {
    std::cerr << "get failed: " << e.what() << "\n";
    return 1;
  }
}
