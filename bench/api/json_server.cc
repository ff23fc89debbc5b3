// A Cairn HTTP server with one trivial JSON route, for wrk (run_wrk.sh): measures the server
// framework itself, not the service behind it.
//   api_json_server [--port N] [--threads N] [--file PATH]
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "cairn/api/server.h"
#include "cairn/common/fs.h"

int main(int argc, char** argv) {
  cairn::api::ServerOptions options;
  std::string file;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--port") == 0)
      options.port = static_cast<std::uint16_t>(std::stoi(argv[i + 1]));
    if (std::strcmp(argv[i], "--threads") == 0) options.io_threads = std::stoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--file") == 0) file = argv[i + 1];
  }
  std::string body = R"({"id":"00000000-0000-4000-8000-000000000000","name":"bench"})";
  if (!file.empty()) {
    auto text = cairn::readFile(file);
    if (!text.ok()) {
      std::fprintf(stderr, "%s\n", text.status().toString().c_str());
      return 1;
    }
    body = *text;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // the I/O threads inherit the mask

  cairn::api::Router router;
  (void)router.add("GET", "/api/snapshots/{idOrName}", [&body](cairn::api::Request&) {
    return cairn::api::Response::text(200, body, "application/json; charset=utf-8");
  });
  auto server = cairn::api::Server::start(options, std::move(router));
  if (!server.ok()) {
    std::fprintf(stderr, "%s\n", server.status().toString().c_str());
    return 1;
  }
  std::printf("listening on http://%s\n", (*server)->address().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  (*server)->stop();
  return 0;
}
