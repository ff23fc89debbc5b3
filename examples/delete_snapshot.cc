// Deletes a snapshot by name (or id).
//
//   delete_snapshot NAME
#include <iostream>

#include <cairn/cairn.h>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: delete_snapshot NAME\n";
    return 2;
  }
  try {
    cairn::Daytona daytona;
    cairn::Snapshot snapshot = daytona.snapshot.get(argv[1]);
    daytona.snapshot.remove(snapshot);
    std::cout << "deleted " << snapshot.name << "\n";
    return 0;
  } catch (const cairn::DaytonaError& e) {
    std::cerr << "delete failed: " << e.what() << "\n";
    return 1;
  }
}
