#include "peer_tools.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

namespace cairn::registry::peer {

CommandResult run(const std::vector<std::string>& argv, std::chrono::seconds timeout) {
  CommandResult r;
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return r;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipefd[1], 1);
    ::dup2(pipefd[1], 2);
    std::vector<char*> args;
    for (const auto& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  ::fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
  char buf[65536];
  bool killed = false;
  for (;;) {
    ssize_t n = ::read(pipefd[0], buf, sizeof buf);
    if (n > 0) {
      r.output.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      killed = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (killed) r.output += "\n[killed after " + std::to_string(timeout.count()) + " s]\n";
  return r;
}

bool haveTool(const std::string& name) {
  return run({"sh", "-c", "command -v " + name}).exit_code == 0;
}

int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

Result<std::unique_ptr<DockerRegistry>> DockerRegistry::start() {
  auto r = std::unique_ptr<DockerRegistry>(new DockerRegistry());
  CAIRN_ASSIGN_OR_RETURN(auto dir, TempDir::create("docker-registry"));
  r->dir_ = std::make_unique<TempDir>(std::move(dir));
  for (int attempt = 0; attempt < 5; ++attempt) {
    r->port_ = freePort();
    std::string config =
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        "    rootdirectory: " +
        (r->dir_->path() / "storage").string() +
        "\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:" + std::to_string(r->port_) +
        "\n";
    CAIRN_RETURN_IF_ERROR(writeFileDurable(r->dir_->path() / "config.yml", config));
    r->pid_ = ::fork();
    if (r->pid_ == 0) {
      int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 1);
      ::dup2(null, 2);
      std::string cfg = (r->dir_->path() / "config.yml").string();
      ::execlp("docker-registry", "docker-registry", "serve", cfg.c_str(), nullptr);
      ::_exit(127);
    }
    // Ready when /v2/ answers (bounded: 10 s).
    for (int i = 0; i < 200; ++i) {
      auto probe = run({"curl", "-sf", "-o", "/dev/null", "http://" + r->host() + "/v2/"},
                       std::chrono::seconds(5));
      if (probe.exit_code == 0) return r;
      int status;
      if (::waitpid(r->pid_, &status, WNOHANG) == r->pid_) {
        r->pid_ = -1;
        break;  // exited: port taken? try another
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    r->stop();
  }
  return unavailable("docker-registry did not start");
}

void DockerRegistry::stop() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    int status;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
}

}  // namespace cairn::registry::peer
