// A tiny static program for seccomp_integration_test: runs inside a busybox container (no libc
// there) and prints "<probe>=<errno>" per probe named on its command line (0: the call worked).
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace {

// The result of a call that made a child process: reap it, report the parent's side.
long reapChild(long pid) {
  if (pid == 0) _exit(0);  // the child
  if (pid > 0) waitpid(static_cast<pid_t>(pid), nullptr, 0);
  return pid;
}

#if defined(__x86_64__)
// A 32-bit x86 system call from this 64-bit process (int 0x80 takes the i386 ABI): the filter
// must cover the compat architecture too. Returns -errno like the raw kernel entry.
long int80(long nr, long a = 0, long b = 0, long c = 0) {
  long ret;
  asm volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
  return ret;
}

long fromRaw(long ret) {
  if (ret < 0 && ret > -4096) {
    errno = static_cast<int>(-ret);
    return -1;
  }
  return ret;
}
#endif

long probe(const char* name) {
#if defined(__x86_64__)
  if (std::strcmp(name, "x86_getpid") == 0) return fromRaw(int80(20));             // i386 getpid
  if (std::strcmp(name, "x86_keyctl") == 0) return fromRaw(int80(288, 0, -3, 1));  // i386 keyctl
#endif
  if (std::strcmp(name, "keyctl") == 0)  // KEYCTL_GET_KEYRING_ID of the session keyring
    return syscall(SYS_keyctl, 0, -3, 1);
  if (std::strcmp(name, "add_key") == 0)  // into the process keyring
    return syscall(SYS_add_key, "user", "cairn-probe", "x", 1, -2);
  if (std::strcmp(name, "unshare_user") == 0) return syscall(SYS_unshare, CLONE_NEWUSER);
  if (std::strcmp(name, "clone_newuser") == 0)
    return reapChild(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
  if (std::strcmp(name, "clone3") == 0) {
    clone_args args{};
    args.exit_signal = SIGCHLD;
    return reapChild(syscall(SYS_clone3, &args, sizeof args));
  }
  if (std::strcmp(name, "fork") == 0) return reapChild(fork());
  if (std::strcmp(name, "listmount") == 0)  // Linux 6.8, unknown to the profile
    return syscall(458, nullptr, nullptr, 0, 0);
  if (std::strcmp(name, "personality_query") == 0) return syscall(SYS_personality, 0xffffffffUL);
  if (std::strcmp(name, "personality_no_aslr") == 0)  // ADDR_NO_RANDOMIZE
    return syscall(SYS_personality, 0x0040000UL);
  errno = EINVAL;
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    errno = 0;
    long r = probe(argv[i]);
    std::printf("%s=%d\n", argv[i], r < 0 ? errno : 0);
  }
  return 0;
}
