// Builds a declarative Image the way a Daytona TypeScript user would, and prints the Dockerfile
// and the context list that `cairn::Image` produces for it (byte-identical to the SDK's).
//
//   print_image [path/to/examples/sample-app]
#include <filesystem>
#include <iostream>

#include "cairn/image/context.h"
#include "cairn/image/image.h"

int main(int argc, char** argv) {
  // The sample app sits beside this file; run from the repository root or pass its path.
  std::string app = argc > 1 ? argv[1] : "examples/sample-app";
  try {
    cairn::Image image =
        cairn::Image::debianSlim("3.12")
            .pipInstall({"flask==3.0.3", "gunicorn"},
                        {.pre = false, .extraOptions = "--no-cache-dir"})
            .addLocalDir(app, "/home/daytona/app")
            .runCommands(
                "useradd -m daytona || true",
                std::vector<std::string>{"python", "-c", "import flask; print(flask.__version__)"})
            .env({{"APP_ENV", "production"}, {"GREETING", "hello world"}})
            .workdir("/home/daytona/app");
    std::cout << "# Dockerfile\n" << image.dockerfile() << "\n# Context\n";
    for (const cairn::ContextEntry& entry : image.contextList()) {
      cairn::Result<std::string> hash = cairn::contextHash(entry);
      std::cout << entry.sourcePath << " -> " << entry.archivePath << "  (context hash "
                << (hash.ok() ? *hash : hash.status().toString()) << ")\n";
    }
  } catch (const cairn::DaytonaError& e) {
    std::cerr << "print_image: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
