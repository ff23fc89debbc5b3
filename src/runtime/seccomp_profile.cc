#include "cairn/runtime/seccomp_profile.h"

#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>
#if __has_include(<seccomp.h>)
#include <seccomp.h>
#define CAIRN_HAVE_SECCOMP_H 1
#endif

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <span>
#include <tuple>

#include "cairn/common/fs.h"
#include "cairn/common/shared_library.h"
#include "cairn/common/strings.h"

namespace cairn::runtime {

namespace {

constexpr std::uint32_t kEperm = EPERM;
constexpr std::uint32_t kEnosys = ENOSYS;

constexpr const char* kAllow = "SCMP_ACT_ALLOW";
constexpr const char* kErrno = "SCMP_ACT_ERRNO";

// Namespace flags of clone(2): CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
// CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET. Written out because <sched.h> may lack some.
constexpr std::uint64_t kCloneNamespaceFlags[] = {0x00020000, 0x02000000, 0x04000000, 0x08000000,
                                                  0x10000000, 0x20000000, 0x40000000};
constexpr std::uint64_t kCloneNamespaceMask = 0x7E020000;
constexpr std::uint64_t kAfVsock = 40;

// ---------------------------------------------------------------------------------------------
// Cairn's default table. Every syscall here is allowed for every container; the groups are
// only for reading. Names libseccomp does not know (newer than it) are skipped by crun, so they
// then fall to the default action (ENOSYS) and glibc uses its fallback.
// ---------------------------------------------------------------------------------------------

constexpr std::string_view kFileSyscalls[] = {
    "access", "faccessat", "faccessat2", "chdir", "fchdir", "getcwd", "chmod", "fchmod", "fchmodat",
    "fchmodat2", "chown", "chown32", "fchown", "fchown32", "fchownat", "lchown", "lchown32",
    "creat", "open", "openat", "openat2", "close", "close_range", "dup", "dup2", "dup3", "fcntl",
    "fcntl64", "flock", "link", "linkat", "symlink", "symlinkat", "unlink", "unlinkat", "rename",
    "renameat", "renameat2", "mkdir", "mkdirat", "mknod", "mknodat", "rmdir", "readlink",
    "readlinkat", "stat", "stat64", "lstat", "lstat64", "fstat", "fstat64", "fstatat64",
    "newfstatat", "statx", "statfs", "statfs64", "fstatfs", "fstatfs64", "getdents", "getdents64",
    "truncate", "truncate64", "ftruncate", "ftruncate64", "fallocate", "fadvise64", "fadvise64_64",
    "readahead", "umask", "utime", "utimes", "utimensat", "utimensat_time64", "futimesat",
    "name_to_handle_at",
    // extended attributes
    "getxattr", "lgetxattr", "fgetxattr", "getxattrat", "setxattr", "lsetxattr", "fsetxattr",
    "setxattrat", "listxattr", "llistxattr", "flistxattr", "listxattrat", "removexattr",
    "lremovexattr", "fremovexattr", "removexattrat", "file_getattr", "file_setattr"};

constexpr std::string_view kIoSyscalls[] = {
    "read", "readv", "pread64", "preadv", "preadv2", "write", "writev", "pwrite64", "pwritev",
    "pwritev2", "lseek", "_llseek", "sendfile", "sendfile64", "splice", "tee", "vmsplice",
    "copy_file_range", "sync", "syncfs", "fsync", "fdatasync", "sync_file_range", "ioctl", "pipe",
    "pipe2",
    // Linux AIO (not io_uring, which is blocked below)
    "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents",
    "io_pgetevents_time64",
    // waiting for events
    "select", "_newselect", "pselect6", "pselect6_time64", "poll", "ppoll", "ppoll_time64",
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_wait", "epoll_wait_old",
    "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "signalfd", "signalfd4", "timerfd_create",
    "timerfd_settime", "timerfd_settime64", "timerfd_gettime", "timerfd_gettime64", "inotify_init",
    "inotify_init1", "inotify_add_watch", "inotify_rm_watch", "fanotify_mark"};

constexpr std::string_view kMemorySyscalls[] = {"brk",           "mmap",
                                                "mmap2",         "munmap",
                                                "mremap",        "mprotect",
                                                "pkey_mprotect", "pkey_alloc",
                                                "pkey_free",     "madvise",
                                                "mincore",       "mlock",
                                                "mlock2",        "mlockall",
                                                "munlock",       "munlockall",
                                                "msync",         "remap_file_pages",
                                                "membarrier",    "memfd_create",
                                                "memfd_secret",  "map_shadow_stack",
                                                "mseal",         "cachestat"};

constexpr std::string_view kProcessSyscalls[] = {
    "execve", "execveat", "exit", "exit_group", "fork", "vfork", "wait4", "waitid", "waitpid",
    "getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp", "getsid", "setsid",
    "getpriority", "setpriority", "prctl", "capget", "capset", "getrlimit", "ugetrlimit",
    "setrlimit", "prlimit64", "getrusage", "times", "set_tid_address", "get_robust_list",
    "set_robust_list", "rseq", "restart_syscall", "uname", "sysinfo", "getcpu", "getrandom",
    "seccomp", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
    "pidfd_open", "pidfd_send_signal", "process_mrelease", "ioprio_get", "ioprio_set",
    "set_thread_area", "get_thread_area", "uretprobe",
    // futexes
    "futex", "futex_time64", "futex_waitv", "futex_wake", "futex_wait", "futex_requeue",
    // scheduling
    "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getattr", "sched_setattr",
    "sched_getparam", "sched_setparam", "sched_getscheduler", "sched_setscheduler",
    "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    // Since Linux 4.8 a tracer cannot use ptrace to get around the tracee's filter, and the
    // kernel's own ptrace access checks still apply; gdb and strace work in a container.
    "ptrace", "process_vm_readv", "process_vm_writev"};

constexpr std::string_view kCredentialSyscalls[] = {
    "getuid",    "getuid32",    "geteuid",   "geteuid32",   "getgid",    "getgid32",
    "getegid",   "getegid32",   "getresuid", "getresuid32", "getresgid", "getresgid32",
    "getgroups", "getgroups32", "setuid",    "setuid32",    "setgid",    "setgid32",
    "setreuid",  "setreuid32",  "setregid",  "setregid32",  "setresuid", "setresuid32",
    "setresgid", "setresgid32", "setfsuid",  "setfsuid32",  "setfsgid",  "setfsgid32",
    "setgroups", "setgroups32"};

constexpr std::string_view kSignalAndTimeSyscalls[] = {
    "kill", "tkill", "tgkill", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
    "rt_tgsigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
    "rt_sigtimedwait_time64", "sigaltstack", "sigprocmask", "sigreturn", "pause", "alarm",
    // clocks and timers (setting the clock needs CAP_SYS_TIME, below)
    "time", "gettimeofday", "clock_gettime", "clock_gettime64", "clock_getres",
    "clock_getres_time64", "clock_nanosleep", "clock_nanosleep_time64", "nanosleep", "adjtimex",
    "clock_adjtime", "clock_adjtime64", "getitimer", "setitimer", "timer_create", "timer_delete",
    "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64", "timer_getoverrun"};

constexpr std::string_view kNetworkAndIpcSyscalls[] = {
    "accept", "accept4", "bind", "connect", "listen", "getsockname", "getpeername", "getsockopt",
    "setsockopt", "socketpair", "send", "sendto", "sendmsg", "sendmmsg", "recv", "recvfrom",
    "recvmsg", "recvmmsg", "recvmmsg_time64", "shutdown", "socketcall",
    // System V and POSIX IPC (the container has its own IPC namespace)
    "ipc", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semtimedop",
    "semtimedop_time64", "semctl", "shmget", "shmat", "shmdt", "shmctl", "mq_open", "mq_unlink",
    "mq_timedsend", "mq_timedsend_time64", "mq_timedreceive", "mq_timedreceive_time64", "mq_notify",
    "mq_getsetattr"};

// Allowed only when the container holds the capability. Without it they fail with EPERM, as the
// kernel itself would answer; the filter keeps the kernel code behind them out of reach.
struct CapabilityGroup {
  std::string_view cap;
  std::initializer_list<std::string_view> names;
};
const CapabilityGroup kCapabilityGroups[] = {
    {"CAP_SYS_ADMIN",
     {"mount",           "umount",         "umount2",       "mount_setattr",  "move_mount",
      "open_tree",       "open_tree_attr", "fsopen",        "fsconfig",       "fsmount",
      "fspick",          "unshare",        "setns",         "sethostname",    "setdomainname",
      "quotactl",        "quotactl_fd",    "fanotify_init", "lookup_dcookie", "bpf",
      "perf_event_open", "syslog"}},
    {"CAP_DAC_READ_SEARCH", {"open_by_handle_at"}},
    {"CAP_SYS_BOOT", {"reboot"}},
    {"CAP_SYS_CHROOT", {"chroot"}},
    {"CAP_SYS_MODULE", {"init_module", "finit_module", "delete_module"}},
    {"CAP_SYS_PACCT", {"acct"}},
    {"CAP_SYS_PTRACE", {"kcmp", "pidfd_getfd", "process_madvise"}},
    {"CAP_SYS_RAWIO", {"iopl", "ioperm"}},
    {"CAP_SYS_TIME", {"settimeofday", "stime", "clock_settime", "clock_settime64"}},
    {"CAP_SYS_TTY_CONFIG", {"vhangup"}},
    {"CAP_SYS_NICE", {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"}},
    {"CAP_SYSLOG", {"syslog"}},
    {"CAP_BPF", {"bpf"}},
    {"CAP_PERFMON", {"perf_event_open"}},
};

// Known syscalls no container gets, whatever its capabilities: the kernel keyring (not
// namespaced), kexec, swap, obsolete or unimplemented calls, userfaultfd (a favourite of kernel
// exploits), NUMA page migration across processes, and io_uring (a large attack surface that
// bypasses the filter for the operations it queues; newer Docker and containerd block it too).
// Listed so they fail with EPERM, not with the ENOSYS of the default action.
constexpr std::string_view kBlockedSyscalls[] = {"add_key",
                                                 "keyctl",
                                                 "request_key",
                                                 "kexec_load",
                                                 "kexec_file_load",
                                                 "swapon",
                                                 "swapoff",
                                                 "pivot_root",
                                                 "userfaultfd",
                                                 "move_pages",
                                                 "migrate_pages",
                                                 "io_uring_setup",
                                                 "io_uring_enter",
                                                 "io_uring_register",
                                                 "_sysctl",
                                                 "uselib",
                                                 "ustat",
                                                 "sysfs",
                                                 "nfsservctl",
                                                 "bdflush",
                                                 "create_module",
                                                 "get_kernel_syms",
                                                 "query_module",
                                                 "vm86",
                                                 "vm86old",
                                                 "pciconfig_iobase",
                                                 "pciconfig_read",
                                                 "pciconfig_write",
                                                 "afs_syscall",
                                                 "getpmsg",
                                                 "putpmsg",
                                                 "security",
                                                 "tuxcall",
                                                 "vserver",
                                                 "nice",
                                                 "oldfstat",
                                                 "oldlstat",
                                                 "oldstat",
                                                 "olduname",
                                                 "oldolduname",
                                                 "sgetmask",
                                                 "ssetmask",
                                                 "idle",
                                                 "lock",
                                                 "mpx",
                                                 "prof",
                                                 "profil",
                                                 "break",
                                                 "gtty",
                                                 "stty",
                                                 "ftime",
                                                 "ulimit"};

std::vector<std::string> strings(std::span<const std::string_view> names) {
  return std::vector<std::string>(names.begin(), names.end());
}

SeccompRule allowRule(std::vector<std::string> names) {
  SeccompRule r;
  r.names = std::move(names);
  r.action = kAllow;
  return r;
}

SeccompRule errnoRule(std::vector<std::string> names, std::uint32_t err) {
  SeccompRule r;
  r.names = std::move(names);
  r.action = kErrno;
  r.errno_ret = err;
  return r;
}

SeccompArg arg0(std::uint64_t value, const char* op, std::uint64_t value_two = 0) {
  return SeccompArg{0, value, value_two, op};
}

SeccompProfile buildDefaultProfile() {
  SeccompProfile p;
  // Unknown syscalls get ENOSYS, the answer of a kernel that lacks them: programs and glibc then
  // use their fallbacks (clone3 → clone, fchmodat2 → fchmodat, faccessat2 → faccessat, ...).
  // With EPERM they would fail instead (Docker's faccessat2 breakage of 2021). Syscalls this
  // table knows and refuses get EPERM explicitly, as under Docker.
  p.default_action = kErrno;
  p.default_errno_ret = kEnosys;
  p.arch_map = {{"SCMP_ARCH_X86_64", {"SCMP_ARCH_X86", "SCMP_ARCH_X32"}},
                {"SCMP_ARCH_AARCH64", {"SCMP_ARCH_ARM"}}};

  p.syscalls.reserve(48);
  using Names = std::span<const std::string_view>;
  const Names groups[] = {kFileSyscalls,         kIoSyscalls,         kMemorySyscalls,
                          kProcessSyscalls,      kCredentialSyscalls, kSignalAndTimeSyscalls,
                          kNetworkAndIpcSyscalls};
  std::vector<std::string> ordinary;
  std::size_t count = 0;
  for (Names group : groups)
    count += group.size();
  ordinary.reserve(count);
  for (Names group : groups)
    ordinary.insert(ordinary.end(), group.begin(), group.end());
  p.syscalls.push_back(allowRule(std::move(ordinary)));

  // socket: every family but AF_VSOCK, which reaches the host's hypervisor services.
  SeccompRule socket_allowed = allowRule({"socket"});
  socket_allowed.args = {arg0(kAfVsock, "SCMP_CMP_NE")};
  p.syscalls.push_back(socket_allowed);
  SeccompRule socket_vsock = errnoRule({"socket"}, kEperm);
  socket_vsock.args = {arg0(kAfVsock, "SCMP_CMP_EQ")};
  p.syscalls.push_back(socket_vsock);

  // personality: only PER_LINUX, PER_LINUX32, UNAME26 (and with PER_LINUX32) and the query
  // 0xffffffff; not ADDR_NO_RANDOMIZE and friends. The refused values get the default action
  // (ENOSYS): libseccomp cannot express "none of these values" as one EPERM rule.
  for (std::uint64_t persona : {0x0ULL, 0x8ULL, 0x20000ULL, 0x20008ULL, 0xffffffffULL}) {
    SeccompRule r = allowRule({"personality"});
    r.args = {arg0(persona, "SCMP_CMP_EQ")};
    p.syscalls.push_back(r);
  }

  // Architecture-specific calls of the native architecture.
  SeccompRule x86_tls = allowRule({"arch_prctl", "modify_ldt"});
  x86_tls.includes.arches = {"amd64", "x32"};
  p.syscalls.push_back(x86_tls);
  SeccompRule x86_ldt = allowRule({"modify_ldt"});
  x86_ldt.includes.arches = {"386", "x86"};
  p.syscalls.push_back(x86_ldt);
  SeccompRule arm = allowRule({"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2",
                               "breakpoint", "cacheflush", "set_tls"});
  arm.includes.arches = {"arm", "arm64"};
  p.syscalls.push_back(arm);

  // Capability-gated groups: allowed with the capability...
  std::map<std::string, std::set<std::string>> enabling_caps;  // syscall → caps that allow it
  for (const CapabilityGroup& g : kCapabilityGroups) {
    SeccompRule r = allowRule(strings(g.names));
    r.includes.caps = {std::string(g.cap)};
    p.syscalls.push_back(r);
    for (std::string_view name : g.names)
      enabling_caps[std::string(name)].insert(std::string(g.cap));
  }
  // ...and EPERM when the container holds none of the capabilities that would allow it.
  std::map<std::set<std::string>, std::vector<std::string>> refused_by_caps;
  for (const CapabilityGroup& g : kCapabilityGroups)
    for (std::string_view name : g.names) {
      auto& names = refused_by_caps[enabling_caps[std::string(name)]];
      if (std::find(names.begin(), names.end(), name) == names.end()) names.emplace_back(name);
    }
  for (auto& [caps, names] : refused_by_caps) {
    SeccompRule r = errnoRule(names, kEperm);
    r.excludes.caps.assign(caps.begin(), caps.end());
    p.syscalls.push_back(r);
  }

  // clone and clone3: with CAP_SYS_ADMIN anything; without, clone(2) without namespace flags
  // (fork, threads, posix_spawn), EPERM with any of them. clone3 takes its flags in a struct a
  // filter cannot read, so it answers ENOSYS and glibc falls back to clone.
  SeccompRule clone_any = allowRule({"clone", "clone3"});
  clone_any.includes.caps = {"CAP_SYS_ADMIN"};
  p.syscalls.push_back(clone_any);
  SeccompRule clone_plain = allowRule({"clone"});
  clone_plain.args = {arg0(kCloneNamespaceMask, "SCMP_CMP_MASKED_EQ", 0)};
  clone_plain.excludes.caps = {"CAP_SYS_ADMIN"};
  p.syscalls.push_back(clone_plain);
  for (std::uint64_t flag : kCloneNamespaceFlags) {
    SeccompRule r = errnoRule({"clone"}, kEperm);
    r.args = {arg0(flag, "SCMP_CMP_MASKED_EQ", flag)};
    r.excludes.caps = {"CAP_SYS_ADMIN"};
    p.syscalls.push_back(r);
  }
  SeccompRule clone3_enosys = errnoRule({"clone3"}, kEnosys);
  clone3_enosys.excludes.caps = {"CAP_SYS_ADMIN"};
  p.syscalls.push_back(clone3_enosys);

  p.syscalls.push_back(errnoRule(strings(kBlockedSyscalls), kEperm));
  return p;
}

// ---------------------------------------------------------------------------------------------
// Resolution
// ---------------------------------------------------------------------------------------------

bool contains(const std::vector<std::string>& list, std::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

// "5.10.0-23-amd64" → {5, 10}; {0, 0} when unparsable.
std::pair<int, int> parseKernelVersion(std::string_view release) {
  int major = 0;
  int minor = 0;
  const char* p = release.data();
  const char* end = release.data() + release.size();
  auto r = std::from_chars(p, end, major);
  if (r.ec != std::errc() || r.ptr == end || *r.ptr != '.') return {0, 0};
  r = std::from_chars(r.ptr + 1, end, minor);
  if (r.ec != std::errc()) return {0, 0};
  return {major, minor};
}

bool kernelAtLeast(const SeccompTarget& target, const std::string& min_kernel) {
  if (target.kernel_major == 0) return true;  // unknown kernel: assume new enough
  auto [major, minor] = parseKernelVersion(min_kernel);
  return std::pair(target.kernel_major, target.kernel_minor) >= std::pair(major, minor);
}

bool ruleApplies(const SeccompRule& rule, const std::vector<std::string>& caps,
                 const SeccompTarget& target) {
  const SeccompCondition& ex = rule.excludes;
  if (!ex.arches.empty() && contains(ex.arches, target.arch)) return false;
  for (const std::string& cap : ex.caps)
    if (contains(caps, cap)) return false;
  if (!ex.min_kernel.empty() && kernelAtLeast(target, ex.min_kernel)) return false;
  const SeccompCondition& in = rule.includes;
  if (!in.arches.empty() && !contains(in.arches, target.arch)) return false;
  for (const std::string& cap : in.caps)
    if (!contains(caps, cap)) return false;
  if (!in.min_kernel.empty() && !kernelAtLeast(target, in.min_kernel)) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

const std::set<std::string, std::less<>> kActions = {
    "SCMP_ACT_KILL",  "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",  "SCMP_ACT_ERRNO",        "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW", "SCMP_ACT_LOG",          "SCMP_ACT_NOTIFY"};
const std::set<std::string, std::less<>> kOperators = {
    "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",       "SCMP_CMP_EQ",
    "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"};
const std::set<std::string, std::less<>> kArchitectures = {
    "SCMP_ARCH_X86",     "SCMP_ARCH_X86_64",   "SCMP_ARCH_X32",         "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS",     "SCMP_ARCH_MIPS64",      "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",  "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",   "SCMP_ARCH_PPC64LE",  "SCMP_ARCH_S390",        "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",  "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",     "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",    "SCMP_ARCH_SH",       "SCMP_ARCH_SHEB"};
const std::set<std::string, std::less<>> kFlags = {
    "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};

class ProfileParser {
 public:
  explicit ProfileParser(std::string_view source) : source_(source) {}

  Result<SeccompProfile> parse(std::string_view text) {
    auto json = parseJson(text);
    if (!json.ok()) return fail("", json.status().message());
    const Json& j = *json;
    if (!j.is_object()) return fail("", "the profile must be a JSON object");
    CAIRN_RETURN_IF_ERROR(
        checkKeys(j, "",
                  {"defaultAction", "defaultErrnoRet", "architectures", "archMap", "syscalls",
                   "flags", "listenerPath", "listenerMetadata", "comment"}));
    SeccompProfile p;
    if (!j.contains("defaultAction"))
      return fail("", "'defaultAction' is missing (e.g. \"SCMP_ACT_ERRNO\")");
    CAIRN_ASSIGN_OR_RETURN(p.default_action, action(j["defaultAction"], "defaultAction"));
    if (j.contains("defaultErrnoRet")) {
      CAIRN_ASSIGN_OR_RETURN(p.default_errno_ret, u32(j["defaultErrnoRet"], "defaultErrnoRet"));
      if (p.default_action != kErrno && p.default_action != "SCMP_ACT_TRACE")
        return fail("defaultErrnoRet",
                    "only applies to SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not " + p.default_action);
    }
    if (j.contains("architectures") && j.contains("archMap"))
      return fail("", "'architectures' and 'archMap' were both given; use one of them");
    if (j.contains("architectures")) {
      CAIRN_ASSIGN_OR_RETURN(p.architectures, arches(j["architectures"], "architectures"));
    }
    if (j.contains("archMap")) {
      const Json& m = j["archMap"];
      if (!m.is_array() && !m.is_null()) return fail("archMap", "must be an array");
      for (std::size_t i = 0; m.is_array() && i < m.size(); ++i) {
        std::string where = "archMap[" + std::to_string(i) + "]";
        if (!m[i].is_object()) return fail(where, "must be an object");
        CAIRN_RETURN_IF_ERROR(checkKeys(m[i], where, {"architecture", "subArchitectures"}));
        SeccompArchMapEntry e;
        if (!m[i].contains("architecture")) return fail(where, "'architecture' is missing");
        CAIRN_ASSIGN_OR_RETURN(auto a, arches(Json::array({m[i]["architecture"]}), where));
        e.architecture = a.front();
        if (m[i].contains("subArchitectures")) {
          CAIRN_ASSIGN_OR_RETURN(e.sub_architectures,
                                 arches(m[i]["subArchitectures"], where + ".subArchitectures"));
        }
        p.arch_map.push_back(std::move(e));
      }
    }
    if (j.contains("flags")) {
      CAIRN_ASSIGN_OR_RETURN(p.flags, strings(j["flags"], "flags"));
      for (const std::string& f : p.flags)
        if (!kFlags.count(f)) return fail("flags", "unknown flag '" + f + "'");
    }
    if (j.contains("listenerPath")) {
      CAIRN_ASSIGN_OR_RETURN(p.listener_path, str(j["listenerPath"], "listenerPath"));
    }
    if (j.contains("listenerMetadata")) {
      CAIRN_ASSIGN_OR_RETURN(p.listener_metadata, str(j["listenerMetadata"], "listenerMetadata"));
    }
    if (j.contains("syscalls") && !j["syscalls"].is_null()) {
      const Json& calls = j["syscalls"];
      if (!calls.is_array()) return fail("syscalls", "must be an array");
      for (std::size_t i = 0; i < calls.size(); ++i) {
        CAIRN_ASSIGN_OR_RETURN(SeccompRule r, rule(calls[i], i));
        p.syscalls.push_back(std::move(r));
      }
    }
    bool notify = p.default_action == "SCMP_ACT_NOTIFY" ||
                  std::any_of(p.syscalls.begin(), p.syscalls.end(),
                              [](const SeccompRule& r) { return r.action == "SCMP_ACT_NOTIFY"; });
    if (notify && p.listener_path.empty())
      return fail("", "SCMP_ACT_NOTIFY needs a 'listenerPath'");
    return p;
  }

 private:
  Status fail(const std::string& where, const std::string& message) const {
    std::string prefix = "seccomp profile " + std::string(source_);
    if (!where.empty()) prefix += ": " + where;
    return invalidArgument(prefix + ": " + message);
  }

  // Docker ignores keys it does not know (podman's profile has a "defaultErrno" nobody reads),
  // so Cairn does too, except near-misses of a known key: a "syscall" list silently ignored
  // would leave a profile that refuses everything.
  Status checkKeys(const Json& object, const std::string& where,
                   std::initializer_list<std::string_view> known) const {
    for (const auto& item : object.items()) {
      if (std::find(known.begin(), known.end(), item.key()) != known.end()) continue;
      for (std::string_view k : known)
        if (editDistance(item.key(), k) <= 2)
          return fail(where,
                      "unknown key '" + item.key() + "' (did you mean '" + std::string(k) + "'?)");
    }
    return okStatus();
  }

  Result<std::string> str(const Json& v, const std::string& where) const {
    if (!v.is_string()) return fail(where, "must be a string");
    return v.get<std::string>();
  }

  Result<std::vector<std::string>> strings(const Json& v, const std::string& where) const {
    std::vector<std::string> out;
    if (v.is_null()) return out;
    if (!v.is_array()) return fail(where, "must be an array of strings");
    for (const Json& s : v) {
      if (!s.is_string()) return fail(where, "must be an array of strings");
      out.push_back(s.get<std::string>());
    }
    return out;
  }

  Result<std::uint64_t> u64(const Json& v, const std::string& where) const {
    if (!v.is_number_unsigned()) return fail(where, "must be a non-negative integer");
    return v.get<std::uint64_t>();
  }

  Result<std::uint32_t> u32(const Json& v, const std::string& where) const {
    CAIRN_ASSIGN_OR_RETURN(std::uint64_t n, u64(v, where));
    if (n > 0xffffffffULL) return fail(where, "is out of range");
    return static_cast<std::uint32_t>(n);
  }

  Result<std::string> action(const Json& v, const std::string& where) const {
    CAIRN_ASSIGN_OR_RETURN(std::string a, str(v, where));
    if (!kActions.count(a))
      return fail(where, "unknown action '" + a + "' (expected SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, " +
                             "SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, " +
                             "SCMP_ACT_TRAP, SCMP_ACT_TRACE, SCMP_ACT_LOG or SCMP_ACT_NOTIFY)");
    return a;
  }

  Result<std::vector<std::string>> arches(const Json& v, const std::string& where) const {
    CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> out, strings(v, where));
    for (const std::string& a : out)
      if (!kArchitectures.count(a))
        return fail(where, "unknown architecture '" + a + "' (expected e.g. SCMP_ARCH_X86_64)");
    return out;
  }

  Result<SeccompCondition> condition(const Json& v, const std::string& where) const {
    SeccompCondition c;
    if (v.is_null()) return c;
    if (!v.is_object()) return fail(where, "must be an object");
    CAIRN_RETURN_IF_ERROR(checkKeys(v, where, {"caps", "arches", "minKernel"}));
    if (v.contains("caps")) {
      CAIRN_ASSIGN_OR_RETURN(c.caps, strings(v["caps"], where + ".caps"));
    }
    if (v.contains("arches")) {
      CAIRN_ASSIGN_OR_RETURN(c.arches, strings(v["arches"], where + ".arches"));
    }
    if (v.contains("minKernel") && !v["minKernel"].is_null()) {
      CAIRN_ASSIGN_OR_RETURN(c.min_kernel, str(v["minKernel"], where + ".minKernel"));
      if (parseKernelVersion(c.min_kernel).first == 0)
        return fail(where + ".minKernel",
                    "'" + c.min_kernel + "' is not a kernel version like \"4.8\"");
    }
    return c;
  }

  Result<SeccompRule> rule(const Json& v, std::size_t index) const {
    std::string where = "syscalls[" + std::to_string(index) + "]";
    if (!v.is_object()) return fail(where, "must be an object");
    CAIRN_RETURN_IF_ERROR(checkKeys(
        v, where,
        {"name", "names", "action", "errnoRet", "args", "includes", "excludes", "comment"}));
    SeccompRule r;
    if (v.contains("name") && v.contains("names"))
      return fail(where, "'name' and 'names' were both given; use 'names'");
    if (v.contains("name")) {
      CAIRN_ASSIGN_OR_RETURN(std::string n, str(v["name"], where + ".name"));
      r.names.push_back(n);
    } else if (v.contains("names")) {
      CAIRN_ASSIGN_OR_RETURN(r.names, strings(v["names"], where + ".names"));
    }
    if (r.names.empty()) return fail(where, "no syscall names");
    for (const std::string& n : r.names)
      if (n.empty()) return fail(where, "an empty syscall name");
    where += " (" + r.names.front() + ")";
    if (!v.contains("action")) return fail(where, "'action' is missing");
    CAIRN_ASSIGN_OR_RETURN(r.action, action(v["action"], where + ".action"));
    if (v.contains("errnoRet") && !v["errnoRet"].is_null()) {
      CAIRN_ASSIGN_OR_RETURN(r.errno_ret, u32(v["errnoRet"], where + ".errnoRet"));
      if (r.action != kErrno && r.action != "SCMP_ACT_TRACE")
        return fail(where + ".errnoRet",
                    "only applies to SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not " + r.action);
    }
    if (v.contains("args") && !v["args"].is_null()) {
      const Json& args = v["args"];
      if (!args.is_array()) return fail(where + ".args", "must be an array");
      for (std::size_t i = 0; i < args.size(); ++i) {
        std::string aw = where + ".args[" + std::to_string(i) + "]";
        const Json& a = args[i];
        if (!a.is_object()) return fail(aw, "must be an object");
        CAIRN_RETURN_IF_ERROR(checkKeys(a, aw, {"index", "value", "valueTwo", "op"}));
        SeccompArg arg;
        if (!a.contains("index") || !a.contains("op")) return fail(aw, "needs 'index' and 'op'");
        CAIRN_ASSIGN_OR_RETURN(arg.index, u32(a["index"], aw + ".index"));
        if (arg.index > 5) return fail(aw + ".index", "must be 0..5 (a syscall has 6 arguments)");
        if (a.contains("value")) {
          CAIRN_ASSIGN_OR_RETURN(arg.value, u64(a["value"], aw + ".value"));
        }
        if (a.contains("valueTwo")) {
          CAIRN_ASSIGN_OR_RETURN(arg.value_two, u64(a["valueTwo"], aw + ".valueTwo"));
        }
        CAIRN_ASSIGN_OR_RETURN(arg.op, str(a["op"], aw + ".op"));
        if (!kOperators.count(arg.op))
          return fail(aw + ".op", "unknown operator '" + arg.op +
                                      "' (expected SCMP_CMP_EQ, NE, LT, LE, GE, GT or MASKED_EQ)");
        r.args.push_back(arg);
      }
    }
    if (v.contains("includes")) {
      CAIRN_ASSIGN_OR_RETURN(r.includes, condition(v["includes"], where + ".includes"));
    }
    if (v.contains("excludes")) {
      CAIRN_ASSIGN_OR_RETURN(r.excludes, condition(v["excludes"], where + ".excludes"));
    }
    return r;
  }

  std::string_view source_;
};

}  // namespace

const SeccompTarget& SeccompTarget::native() {
  static const SeccompTarget target = [] {
    SeccompTarget t;
#if defined(__x86_64__) && defined(__ILP32__)
    t.arch = "x32";
    t.scmp_arch = "SCMP_ARCH_X32";
#elif defined(__x86_64__)
    t.arch = "amd64";
    t.scmp_arch = "SCMP_ARCH_X86_64";
#elif defined(__aarch64__)
    t.arch = "arm64";
    t.scmp_arch = "SCMP_ARCH_AARCH64";
#elif defined(__i386__)
    t.arch = "386";
    t.scmp_arch = "SCMP_ARCH_X86";
#elif defined(__arm__)
    t.arch = "arm";
    t.scmp_arch = "SCMP_ARCH_ARM";
#else
#error "Cairn's seccomp profile knows x86_64, x86, x32, aarch64 and arm only"
#endif
    utsname u{};
    if (uname(&u) == 0) std::tie(t.kernel_major, t.kernel_minor) = parseKernelVersion(u.release);
    return t;
  }();
  return target;
}

const SeccompProfile& defaultSeccompProfile() {
  static const SeccompProfile profile = buildDefaultProfile();
  return profile;
}

namespace {

// What resolution keeps of a profile for one container: the architectures and, per applying
// rule, the names it still carries. Shared by the JSON and the text form, so they cannot drift.
struct ResolvedRule {
  const SeccompRule* rule = nullptr;
  std::size_t first = 0;  //!< its names are ResolvedSection::names[first, last)
  std::size_t last = 0;
};
struct ResolvedSection {
  std::vector<std::string_view> architectures;
  std::vector<ResolvedRule> rules;
  std::vector<const std::string*> names;  //!< every kept name, rule after rule
};

// The (name, action, errno) triples already given unconditionally: an open-addressing hash
// table of (rule, name) indexes into the profile. Resolving the default profile inserts ~400
// names; a node-based set spent more time in malloc and memcmp than the rest of the
// resolution, and small slots keep a one-shot `cairn run` from faulting in pages for them.
class VerdictSet {
 public:
  explicit VerdictSet(const SeccompProfile& profile) : profile_(profile) {
    std::size_t names = 0;
    for (const SeccompRule& r : profile.syscalls)
      names += r.names.size();
    std::size_t size = 16;
    while (size < 2 * names)
      size *= 2;
    slots_.assign(size, Slot{});
  }

  //! false when (name, rule's action, rule's errno) was inserted before.
  bool insert(std::uint32_t rule_index, std::uint32_t name_index) {
    const SeccompRule& rule = profile_.syscalls[rule_index];
    const std::string& name = rule.names[name_index];
    std::uint32_t err = rule.errno_ret.value_or(0);
    std::size_t mask = slots_.size() - 1;
    for (std::size_t i = std::hash<std::string_view>{}(name)&mask;; i = (i + 1) & mask) {
      Slot& slot = slots_[i];
      if (slot.rule == 0) {
        slot = Slot{rule_index + 1, name_index};
        return true;
      }
      const SeccompRule& other = profile_.syscalls[slot.rule - 1];
      if (other.names[slot.name] == name && other.errno_ret.value_or(0) == err &&
          (&other == &rule || other.action == rule.action))
        return false;
    }
  }

 private:
  struct Slot {
    std::uint32_t rule = 0;  //!< index + 1; 0: empty
    std::uint32_t name = 0;
  };
  const SeccompProfile& profile_;
  std::vector<Slot> slots_;  // at most half full, so a probe always ends
};

Result<ResolvedSection> resolveRules(const SeccompProfile& profile,
                                     const std::vector<std::string>& caps,
                                     const SeccompTarget& target) {
  if (profile.default_action.empty()) return invalidArgument("seccomp profile: no default action");
  if (!profile.architectures.empty() && !profile.arch_map.empty())
    return invalidArgument("seccomp profile: 'architectures' and 'archMap' were both given");
  ResolvedSection out;
  out.architectures.assign(profile.architectures.begin(), profile.architectures.end());
  for (const SeccompArchMapEntry& e : profile.arch_map) {
    if (e.architecture != target.scmp_arch) continue;
    out.architectures.push_back(e.architecture);
    out.architectures.insert(out.architectures.end(), e.sub_architectures.begin(),
                             e.sub_architectures.end());
  }
  // A name that an earlier unconditional rule already gives the same action is dropped: the
  // gated groups overlap (bpf: CAP_SYS_ADMIN or CAP_BPF), and one rule per action is enough.
  VerdictSet unconditional(profile);
  std::size_t all_names = 0;
  for (const SeccompRule& rule : profile.syscalls)
    all_names += rule.names.size();
  out.rules.reserve(profile.syscalls.size());
  out.names.reserve(all_names);
  for (std::uint32_t ri = 0; ri < profile.syscalls.size(); ++ri) {
    const SeccompRule& rule = profile.syscalls[ri];
    if (!ruleApplies(rule, caps, target)) continue;
    ResolvedRule r{&rule, out.names.size(), out.names.size()};
    for (std::uint32_t ni = 0; ni < rule.names.size(); ++ni) {
      if (rule.args.empty() && !unconditional.insert(ri, ni)) continue;
      out.names.push_back(&rule.names[ni]);
    }
    r.last = out.names.size();
    if (r.last > r.first) out.rules.push_back(r);
  }
  return out;
}

// A JSON string as nlohmann's dump() writes it, for ASCII text. A byte >= 0x80 clears
// `ascii`: dump() validates UTF-8 and escapes nothing else, and this writer leaves that case
// to it rather than repeat the validation.
void appendJsonString(std::string& out, std::string_view s, bool& ascii) {
  out += '"';
  std::size_t run = 0;  // start of the bytes not yet appended
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) ascii = false;
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default: {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
        out += buf;
      }
    }
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

void appendJsonNumber(std::string& out, std::uint64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, end);
}

template <typename Strings>
void appendJsonStrings(std::string& out, const Strings& list, bool& ascii) {
  out += '[';
  bool first = true;
  for (const auto& s : list) {
    if (!first) out += ',';
    first = false;
    appendJsonString(out, s, ascii);
  }
  out += ']';
}

bool rulesOnly(const SeccompProfile& p) {
  return p.flags.empty() && p.listener_path.empty() && p.listener_metadata.empty();
}

}  // namespace

Result<OrderedJson> resolveSeccompProfile(const SeccompProfile& profile,
                                          const std::vector<std::string>& caps,
                                          const SeccompTarget& target) {
  CAIRN_ASSIGN_OR_RETURN(ResolvedSection resolved, resolveRules(profile, caps, target));
  OrderedJson s;
  s["defaultAction"] = profile.default_action;
  if (profile.default_errno_ret) s["defaultErrnoRet"] = *profile.default_errno_ret;
  OrderedJson arches = OrderedJson::array();
  for (std::string_view a : resolved.architectures)
    arches.push_back(a);
  s["architectures"] = std::move(arches);
  if (!profile.flags.empty()) s["flags"] = profile.flags;
  if (!profile.listener_path.empty()) s["listenerPath"] = profile.listener_path;
  if (!profile.listener_metadata.empty()) s["listenerMetadata"] = profile.listener_metadata;
  OrderedJson rules = OrderedJson::array();
  for (const ResolvedRule& resolved_rule : resolved.rules) {
    const SeccompRule& rule = *resolved_rule.rule;
    OrderedJson r;
    OrderedJson names = OrderedJson::array();
    for (std::size_t i = resolved_rule.first; i < resolved_rule.last; ++i)
      names.push_back(*resolved.names[i]);
    r["names"] = std::move(names);
    r["action"] = rule.action;
    if (rule.errno_ret) r["errnoRet"] = *rule.errno_ret;
    if (!rule.args.empty()) {
      OrderedJson args = OrderedJson::array();
      for (const SeccompArg& a : rule.args)
        args.push_back(
            {{"index", a.index}, {"value", a.value}, {"valueTwo", a.value_two}, {"op", a.op}});
      r["args"] = std::move(args);
    }
    rules.push_back(std::move(r));
  }
  s["syscalls"] = std::move(rules);
  return s;
}

Result<std::string> resolveSeccompProfileText(const SeccompProfile& profile,
                                              const std::vector<std::string>& caps,
                                              const SeccompTarget& target) {
  CAIRN_ASSIGN_OR_RETURN(ResolvedSection resolved, resolveRules(profile, caps, target));
  bool ascii = true;
  std::string out;
  out.reserve(1024 + 24 * profile.syscalls.size() * 8);
  out += "{\"defaultAction\":";
  appendJsonString(out, profile.default_action, ascii);
  if (profile.default_errno_ret) {
    out += ",\"defaultErrnoRet\":";
    appendJsonNumber(out, *profile.default_errno_ret);
  }
  out += ",\"architectures\":";
  appendJsonStrings(out, resolved.architectures, ascii);
  if (!profile.flags.empty()) {
    out += ",\"flags\":";
    appendJsonStrings(out, profile.flags, ascii);
  }
  if (!profile.listener_path.empty()) {
    out += ",\"listenerPath\":";
    appendJsonString(out, profile.listener_path, ascii);
  }
  if (!profile.listener_metadata.empty()) {
    out += ",\"listenerMetadata\":";
    appendJsonString(out, profile.listener_metadata, ascii);
  }
  out += ",\"syscalls\":[";
  bool first_rule = true;
  for (const ResolvedRule& resolved_rule : resolved.rules) {
    const SeccompRule& rule = *resolved_rule.rule;
    if (!first_rule) out += ',';
    first_rule = false;
    out += "{\"names\":";
    out += '[';
    for (std::size_t i = resolved_rule.first; i < resolved_rule.last; ++i) {
      if (i != resolved_rule.first) out += ',';
      appendJsonString(out, *resolved.names[i], ascii);
    }
    out += ']';
    out += ",\"action\":";
    appendJsonString(out, rule.action, ascii);
    if (rule.errno_ret) {
      out += ",\"errnoRet\":";
      appendJsonNumber(out, *rule.errno_ret);
    }
    if (!rule.args.empty()) {
      out += ",\"args\":[";
      bool first_arg = true;
      for (const SeccompArg& a : rule.args) {
        if (!first_arg) out += ',';
        first_arg = false;
        out += "{\"index\":";
        appendJsonNumber(out, a.index);
        out += ",\"value\":";
        appendJsonNumber(out, a.value);
        out += ",\"valueTwo\":";
        appendJsonNumber(out, a.value_two);
        out += ",\"op\":";
        appendJsonString(out, a.op, ascii);
        out += '}';
      }
      out += ']';
    }
    out += '}';
  }
  out += "]}";
  if (ascii) return out;
  // Rare (a custom profile with non-ASCII text): nlohmann validates the UTF-8 and writes it.
  CAIRN_ASSIGN_OR_RETURN(OrderedJson section, resolveSeccompProfile(profile, caps, target));
  try {
    return section.dump();
  } catch (const std::exception& e) {
    return invalidArgument(std::string("seccomp profile: ") + e.what());
  }
}

namespace {

// The default profile resolves to one of a handful of sections per process (one per capability
// set: Docker's, or Docker's plus --cap-add), so `cairn serve` resolves each once.
std::string memoKey(const std::vector<std::string>& caps, const SeccompTarget& target) {
  std::string key = target.arch + "|" + target.scmp_arch + "|" +
                    std::to_string(target.kernel_major) + "." + std::to_string(target.kernel_minor);
  for (const std::string& c : caps)
    key += "|" + c;
  return key;
}

struct DefaultSectionMemo {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<const std::string>> texts;
  std::map<std::string, std::shared_ptr<const OrderedJson>> sections;
};

DefaultSectionMemo& defaultSectionMemo() {
  // Never destroyed: freeing the cached sections at exit was ~0.1 ms of every `cairn run`, and
  // another thread may still hold one then. Reachable from here, so not a leak to LSan.
  static DefaultSectionMemo* memo = new DefaultSectionMemo;
  return *memo;
}

std::shared_ptr<const std::string> defaultSectionText(const std::vector<std::string>& caps,
                                                      const SeccompTarget& target) {
  DefaultSectionMemo& memo = defaultSectionMemo();
  std::string key = memoKey(caps, target);
  {
    std::lock_guard lock(memo.mu);
    if (auto it = memo.texts.find(key); it != memo.texts.end()) return it->second;
  }
  auto text = resolveSeccompProfileText(defaultSeccompProfile(), caps, target);
  // The built-in table always has a default action, no architecture conflict and ASCII names.
  auto shared = std::make_shared<const std::string>(text.ok() ? std::move(*text) : std::string());
  std::lock_guard lock(memo.mu);
  return memo.texts.emplace(std::move(key), std::move(shared)).first->second;
}

}  // namespace

OrderedJson defaultSeccompSection(const std::vector<std::string>& caps,
                                  const SeccompTarget& target) {
  DefaultSectionMemo& memo = defaultSectionMemo();
  std::string key = memoKey(caps, target);
  {
    std::lock_guard lock(memo.mu);
    if (auto it = memo.sections.find(key); it != memo.sections.end()) return *it->second;
  }
  auto section = resolveSeccompProfile(defaultSeccompProfile(), caps, target);
  // The built-in table always has a default action and no architecture conflict.
  auto shared =
      std::make_shared<const OrderedJson>(section.ok() ? std::move(*section) : OrderedJson());
  std::lock_guard lock(memo.mu);
  return *memo.sections.emplace(std::move(key), std::move(shared)).first->second;
}

Result<std::optional<SeccompSectionText>> seccompSectionTextFor(
    const SeccompOption& option, const std::vector<std::string>& caps,
    const SeccompTarget& target) {
  switch (option.mode) {
    case SeccompMode::kUnconfined:
      return std::optional<SeccompSectionText>();
    case SeccompMode::kCustom: {
      if (!option.custom) return invalidArgument("seccomp: custom mode without a loaded profile");
      SeccompSectionText out;
      CAIRN_ASSIGN_OR_RETURN(out.text, resolveSeccompProfileText(*option.custom, caps, target));
      out.rules_only = rulesOnly(*option.custom);
      return std::optional<SeccompSectionText>(std::move(out));
    }
    case SeccompMode::kDefault:
      break;
  }
  SeccompSectionText out;
  out.text = *defaultSectionText(caps, target);
  out.rules_only = rulesOnly(defaultSeccompProfile());
  return std::optional<SeccompSectionText>(std::move(out));
}

Result<SeccompProfile> parseSeccompProfile(std::string_view json_text, std::string_view source) {
  return ProfileParser(source).parse(json_text);
}

Result<SeccompProfile> loadSeccompProfile(const std::filesystem::path& path) {
  auto text = readFile(path);
  if (!text.ok())
    return Status(text.status().code(),
                  "seccomp profile " + path.string() + ": " + text.status().message());
  if (trimSpace(*text).empty())
    return invalidArgument("seccomp profile " + path.string() + ": the file is empty");
  return parseSeccompProfile(*text, path.string());
}

Result<SeccompOption> parseSeccompOption(std::string_view value) {
  SeccompOption option;
  if (value == "unconfined") {
    option.mode = SeccompMode::kUnconfined;
    return option;
  }
  if (value == "default" || value == "builtin") return option;
  if (value.empty())
    return invalidArgument(
        "seccomp: expected 'unconfined', 'default' or the path of a profile file");
  CAIRN_ASSIGN_OR_RETURN(SeccompProfile profile, loadSeccompProfile(std::string(value)));
  option.mode = SeccompMode::kCustom;
  option.custom = std::make_shared<const SeccompProfile>(std::move(profile));
  return option;
}

std::string_view seccompModeName(SeccompMode mode) {
  switch (mode) {
    case SeccompMode::kUnconfined:
      return "unconfined";
    case SeccompMode::kCustom:
      return "custom";
    case SeccompMode::kDefault:
      break;
  }
  return "default";
}

Result<std::optional<OrderedJson>> seccompSectionFor(const SeccompOption& option,
                                                     const std::vector<std::string>& caps,
                                                     const SeccompTarget& target) {
  switch (option.mode) {
    case SeccompMode::kUnconfined:
      return std::optional<OrderedJson>();
    case SeccompMode::kCustom: {
      if (!option.custom) return invalidArgument("seccomp: custom mode without a loaded profile");
      CAIRN_ASSIGN_OR_RETURN(OrderedJson s, resolveSeccompProfile(*option.custom, caps, target));
      return std::optional<OrderedJson>(std::move(s));
    }
    case SeccompMode::kDefault:
      break;
  }
  return std::optional<OrderedJson>(defaultSeccompSection(caps, target));
}

// ---------------------------------------------------------------------------------------------
// Compiling a section into BPF
// ---------------------------------------------------------------------------------------------

#ifdef CAIRN_HAVE_SECCOMP_H
namespace {

// libseccomp, loaded on first use (common/shared_library.h): only a run that compiles a
// filter maps it; every other start of `cairn` (and every run with a cached filter) does not.
struct SeccompLibrary {
  scmp_filter_ctx (*init)(uint32_t def_action) = nullptr;
  void (*release)(scmp_filter_ctx ctx) = nullptr;
  int (*arch_add)(scmp_filter_ctx ctx, uint32_t arch_token) = nullptr;
  uint32_t (*arch_resolve_name)(const char* arch_name) = nullptr;
  int (*attr_set)(scmp_filter_ctx ctx, enum scmp_filter_attr attr, uint32_t value) = nullptr;
  int (*syscall_resolve_name)(const char* name) = nullptr;
  int (*rule_add_array)(scmp_filter_ctx ctx, uint32_t action, int syscall, unsigned int arg_cnt,
                        const struct scmp_arg_cmp* arg_array) = nullptr;
  int (*export_bpf)(const scmp_filter_ctx ctx, int fd) = nullptr;
  const scmp_version* (*version)() = nullptr;
};

Result<const SeccompLibrary*> seccompLibrary() {
  static const Result<SeccompLibrary> library = []() -> Result<SeccompLibrary> {
    // The handle closes at the end of this block; the library stays mapped (RTLD_NODELETE), so
    // the pointers below stay valid for the rest of the process.
    CAIRN_ASSIGN_OR_RETURN(SharedLibrary so, SharedLibrary::open("libseccomp.so.2", "libseccomp2"));
    SeccompLibrary lib;
    CAIRN_RETURN_IF_ERROR(so.resolve("seccomp_init", lib.init));
    CAIRN_RETURN_IF_ERROR(so.resolve("seccomp_release", lib.release));
    CAIRN_RETURN_IF_ERROR(so.resolve("seccomp_arch_add", lib.arch_add));
    CAIRN_RETURN_IF_ERROR(so.resolve("seccomp_arch_resolve_name", lib.arch_resolve_name));
    CAIRN_RETURN_IF_ERROR(so.resolve("seccomp_attr_set", lib.attr_set));
    CAIRN_RETURN_IF_ERROR(so.resolve("seccomp_syscall_resolve_name", lib.syscall_resolve_name));
    CAIRN_RETURN_IF_ERROR(so.resolve("seccomp_rule_add_array", lib.rule_add_array));
    CAIRN_RETURN_IF_ERROR(so.resolve("seccomp_export_bpf", lib.export_bpf));
    CAIRN_RETURN_IF_ERROR(so.resolve("seccomp_version", lib.version));
    return lib;
  }();
  if (!library.ok()) return library.status();
  return &*library;
}

// The action names of the OCI runtime spec, as crun maps them ("SCMP_ACT_KILL" is libseccomp's
// SCMP_ACT_KILL, i.e. the thread). ERRNO and TRACE carry `errno_ret`.
std::optional<std::uint32_t> scmpAction(std::string_view name, std::uint32_t errno_ret) {
  if (name == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
  if (name == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(errno_ret);
  if (name == "SCMP_ACT_TRACE") return SCMP_ACT_TRACE(errno_ret);
  if (name == "SCMP_ACT_KILL") return SCMP_ACT_KILL;
  if (name == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL_THREAD;
  if (name == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
  if (name == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  if (name == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
  return std::nullopt;
}

std::optional<scmp_compare> scmpOperator(std::string_view name) {
  static const std::pair<std::string_view, scmp_compare> kOps[] = {
      {"SCMP_CMP_NE", SCMP_CMP_NE},
      {"SCMP_CMP_LT", SCMP_CMP_LT},
      {"SCMP_CMP_LE", SCMP_CMP_LE},
      {"SCMP_CMP_EQ", SCMP_CMP_EQ},
      {"SCMP_CMP_GE", SCMP_CMP_GE},
      {"SCMP_CMP_GT", SCMP_CMP_GT},
      {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ}};
  for (const auto& [n, op] : kOps)
    if (n == name) return op;
  return std::nullopt;
}

// The section's "errnoRet" / "defaultErrnoRet", EPERM when absent (crun's default); only for
// the actions that carry one.
Result<std::uint32_t> errnoOf(const OrderedJson& object, const char* key, std::string_view action,
                              const std::string& where) {
  if (!object.contains(key)) return std::uint32_t{EPERM};
  if (action != "SCMP_ACT_ERRNO" && action != "SCMP_ACT_TRACE")
    return invalidArgument("seccomp section: " + where + ": " + key +
                           " only applies to SCMP_ACT_ERRNO or SCMP_ACT_TRACE");
  if (!object[key].is_number_unsigned() || object[key].get<std::uint64_t>() > 0xffffffffULL)
    return invalidArgument("seccomp section: " + where + ": " + key +
                           " must be a 32-bit unsigned integer");
  return object[key].get<std::uint32_t>();
}

Result<std::string> compileWith(const SeccompLibrary& lib, const OrderedJson& section,
                                SeccompFilterLayout layout) {
  if (!section.is_object()) return invalidArgument("seccomp section: not a JSON object");
  if (section.contains("listenerPath"))
    return failedPrecondition(
        "seccomp section: SCMP_ACT_NOTIFY listeners need the runtime to compile the filter");
  if (!section.contains("defaultAction") || !section["defaultAction"].is_string())
    return invalidArgument("seccomp section: 'defaultAction' is missing");
  std::string default_name = section["defaultAction"].get<std::string>();
  CAIRN_ASSIGN_OR_RETURN(std::uint32_t default_errno,
                         errnoOf(section, "defaultErrnoRet", default_name, "defaultAction"));
  std::optional<std::uint32_t> default_action = scmpAction(default_name, default_errno);
  if (!default_action)
    return invalidArgument("seccomp section: unsupported default action '" + default_name + "'");

  std::unique_ptr<void, void (*)(scmp_filter_ctx)> ctx(lib.init(*default_action), lib.release);
  if (!ctx) return internalError("seccomp_init failed for default action " + default_name);
  if (layout == SeccompFilterLayout::kBinaryTree) {
    int rc = lib.attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2);
    if (rc != 0) return errnoStatus(-rc, "seccomp: binary-tree layout (libseccomp >= 2.5)");
  }
  if (section.contains("architectures")) {
    if (!section["architectures"].is_array())
      return invalidArgument("seccomp section: 'architectures' must be an array");
    for (const auto& a : section["architectures"]) {
      if (!a.is_string()) return invalidArgument("seccomp section: an architecture is no string");
      std::string name = a.get<std::string>();
      std::string lower = name.starts_with("SCMP_ARCH_") ? name.substr(10) : name;
      for (char& c : lower)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::uint32_t token = lib.arch_resolve_name(lower.c_str());
      if (token == 0)
        return invalidArgument("seccomp section: unknown architecture '" + name + "'");
      int rc = lib.arch_add(ctx.get(), token);
      if (rc != 0 && rc != -EEXIST) return errnoStatus(-rc, "seccomp: add architecture " + name);
    }
  }
  const OrderedJson* rules = nullptr;
  if (section.contains("syscalls") && !section["syscalls"].is_null()) {
    rules = &section["syscalls"];
    if (!rules->is_array()) return invalidArgument("seccomp section: 'syscalls' must be an array");
  }
  for (std::size_t i = 0; rules != nullptr && i < rules->size(); ++i) {
    const OrderedJson& rule = (*rules)[i];
    std::string where = "syscalls[" + std::to_string(i) + "]";
    if (!rule.is_object() || !rule.contains("action") || !rule["action"].is_string() ||
        !rule.contains("names") || !rule["names"].is_array())
      return invalidArgument("seccomp section: " + where + " needs 'names' and 'action'");
    std::string action_name = rule["action"].get<std::string>();
    CAIRN_ASSIGN_OR_RETURN(std::uint32_t err, errnoOf(rule, "errnoRet", action_name, where));
    std::optional<std::uint32_t> action = scmpAction(action_name, err);
    if (!action)
      return invalidArgument("seccomp section: " + where + ": unsupported action '" + action_name +
                             "'");
    // libseccomp refuses a rule with the default action; it changes nothing anyway.
    if (*action == *default_action) continue;
    std::vector<scmp_arg_cmp> args;
    bool repeated_index = false;
    if (rule.contains("args") && !rule["args"].is_null()) {
      if (!rule["args"].is_array() || rule["args"].size() > 6)
        return invalidArgument("seccomp section: " + where + ": 'args' must be at most 6");
      unsigned seen = 0;
      for (const auto& a : rule["args"]) {
        if (!a.is_object() || !a.contains("index") || !a["index"].is_number_unsigned() ||
            a["index"].get<std::uint64_t>() > 5 || !a.contains("op") || !a["op"].is_string())
          return invalidArgument("seccomp section: " + where +
                                 ": an argument needs an index 0..5 and an op");
        std::optional<scmp_compare> op = scmpOperator(a["op"].get<std::string>());
        if (!op)
          return invalidArgument("seccomp section: " + where + ": unknown operator '" +
                                 a["op"].get<std::string>() + "'");
        auto number = [&](const char* key) -> Result<std::uint64_t> {
          if (!a.contains(key)) return std::uint64_t{0};
          if (!a[key].is_number_unsigned())
            return invalidArgument("seccomp section: " + where + ": '" + key +
                                   "' must be an unsigned integer");
          return a[key].get<std::uint64_t>();
        };
        scmp_arg_cmp cmp{};
        cmp.arg = a["index"].get<unsigned>();
        cmp.op = *op;
        CAIRN_ASSIGN_OR_RETURN(cmp.datum_a, number("value"));
        CAIRN_ASSIGN_OR_RETURN(cmp.datum_b, number("valueTwo"));
        if (seen & (1u << cmp.arg)) repeated_index = true;
        seen |= 1u << cmp.arg;
        args.push_back(cmp);
      }
    }
    for (const auto& n : rule["names"]) {
      if (!n.is_string())
        return invalidArgument("seccomp section: " + where + ": a name is no string");
      std::string name = n.get<std::string>();
      int nr = lib.syscall_resolve_name(name.c_str());
      // Newer than this libseccomp: left to the default action, as crun does.
      if (nr == __NR_SCMP_ERROR) continue;
      // Two conditions on one argument cannot hold at once in one libseccomp rule: as crun
      // (and runc) do, each becomes a rule of its own, i.e. they are ORed.
      std::vector<std::pair<unsigned, const scmp_arg_cmp*>> adds;
      if (repeated_index) {
        for (const scmp_arg_cmp& cmp : args)
          adds.emplace_back(1u, &cmp);
      } else {
        adds.emplace_back(static_cast<unsigned>(args.size()), args.empty() ? nullptr : args.data());
      }
      for (const auto& [count, array] : adds) {
        int rc = lib.rule_add_array(ctx.get(), *action, nr, count, array);
        if (rc != 0) return errnoStatus(-rc, "seccomp: " + where + ": add rule for " + name);
      }
    }
  }
  UniqueFd fd(memfd_create("cairn-seccomp-bpf", MFD_CLOEXEC));
  if (!fd.valid()) return errnoStatus(errno, "memfd_create for the seccomp filter");
  int rc = lib.export_bpf(ctx.get(), fd.get());
  if (rc != 0) return errnoStatus(-rc, "seccomp_export_bpf");
  off_t size = lseek(fd.get(), 0, SEEK_CUR);
  if (size <= 0 || size % 8 != 0)
    return internalError("seccomp_export_bpf wrote " + std::to_string(size) + " bytes");
  std::string bpf(static_cast<std::size_t>(size), '\0');
  if (pread(fd.get(), bpf.data(), bpf.size(), 0) != size)
    return errnoStatus(errno, "read back the seccomp filter");
  return bpf;
}

}  // namespace
#endif  // CAIRN_HAVE_SECCOMP_H

Result<std::string> seccompCompilerVersion() {
#ifdef CAIRN_HAVE_SECCOMP_H
  CAIRN_ASSIGN_OR_RETURN(const SeccompLibrary* lib, seccompLibrary());
  const scmp_version* v = lib->version();
  if (v == nullptr) return internalError("seccomp_version returned nothing");
  return "libseccomp " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
         std::to_string(v->micro);
#else
  return failedPrecondition("seccomp: built without libseccomp's header (libseccomp-dev)");
#endif
}

Result<std::string> compileSeccompFilter(const OrderedJson& section, SeccompFilterLayout layout) {
#ifdef CAIRN_HAVE_SECCOMP_H
  CAIRN_ASSIGN_OR_RETURN(const SeccompLibrary* lib, seccompLibrary());
  try {
    return compileWith(*lib, section, layout);
  } catch (const std::exception& e) {  // a JSON value of an unexpected type
    return invalidArgument(std::string("seccomp section: ") + e.what());
  }
#else
  (void)section;
  (void)layout;
  return failedPrecondition("seccomp: built without libseccomp's header (libseccomp-dev)");
#endif
}

}  // namespace cairn::runtime
