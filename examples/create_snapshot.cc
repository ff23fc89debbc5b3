// Creates a snapshot from a declarative Image (Python 3.12 with numpy), printing the build log
// as it arrives — the C++ form of the seed's TypeScript example.
//
//   DAYTONA_API_URL=http://127.0.0.1:3000/api DAYTONA_API_KEY=... create_snapshot [NAME]
#include <iostream>
#include <string>
#include <vector>

#include <cairn/cairn.h>

int main(int argc, char** argv) {
  const std::string name = argc > 1 ? argv[1] : "numpy-snapshot";
  try {
    cairn::Daytona daytona;  // DAYTONA_API_KEY / DAYTONA_API_URL from the environment
    // A named list: a braced {"numpy"} literal of one element would also match the
    // single-package overload (clang warns about that with -Wbraced-scalar-init).
    const std::vector<std::string> packages = {"numpy"};
    cairn::Image image = cairn::Image::debianSlim("3.12").pipInstall(packages);
    cairn::Snapshot snapshot = daytona.snapshot.create(
        {.name = name, .image = image},
        {.onLogs = [](std::string_view chunk) { std::cout << chunk << std::flush; }});
    std::cout << "\nsnapshot " << snapshot.name << " is " << snapshot.state.str() << "\n";
    return snapshot.state == cairn::SnapshotState::Kind::kActive ? 0 : 1;
  } catch (const cairn::DaytonaError& e) {
    std::cerr << "create failed: " << e.what() << "\n";
    return 1;
  }
}
