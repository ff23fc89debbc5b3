#include "cairn/runtime/seccomp_profile.h"

#include <gtest/gtest.h>

#include <linux/audit.h>
#include <linux/seccomp.h>
#include <unistd.h>

#include <map>
#include <set>

#include "cairn/common/fs.h"
#include "cairn/runtime/container_spec.h"
#include "cairn/testing/status_matchers.h"
#include "seccomp_bpf_eval.h"

namespace cairn::runtime {
namespace {

using ::cairn::testing::IsOk;
using ::cairn::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Docker's default capability set, what every Cairn container gets today.
const std::vector<std::string> kDockerCaps = {
    "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
    "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
    "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
    "CAP_KILL",    "CAP_AUDIT_WRITE",
};

SeccompTarget amd64() {
  return {"amd64", "SCMP_ARCH_X86_64", 6, 1};
}
SeccompTarget arm64() {
  return {"arm64", "SCMP_ARCH_AARCH64", 6, 1};
}

std::vector<std::string> withCaps(std::vector<std::string> extra) {
  std::vector<std::string> caps = kDockerCaps;
  caps.insert(caps.end(), extra.begin(), extra.end());
  return caps;
}

// What the filter answers for `name` called with any arguments: "allow", "errno:N", the default
// action's answer, or "args" when only argument-filtered rules name it.
std::string verdict(const OrderedJson& section, const std::string& name) {
  bool conditional = false;
  for (const auto& rule : section["syscalls"]) {
    bool named = false;
    for (const auto& n : rule["names"])
      named = named || n == name;
    if (!named) continue;
    if (rule.contains("args")) {
      conditional = true;
      continue;
    }
    if (rule["action"] == "SCMP_ACT_ALLOW") return "allow";
    return "errno:" + std::to_string(rule.value("errnoRet", 0));
  }
  if (conditional) return "args";
  return "default:" + std::to_string(section.value("defaultErrnoRet", 0));
}

// The argument rules naming `name`: (action/errno, op, value, valueTwo) per rule.
std::vector<std::string> argRules(const OrderedJson& section, const std::string& name) {
  std::vector<std::string> out;
  for (const auto& rule : section["syscalls"]) {
    bool named = false;
    for (const auto& n : rule["names"])
      named = named || n == name;
    if (!named || !rule.contains("args")) continue;
    std::string s = rule["action"].get<std::string>();
    if (rule.contains("errnoRet")) s += "/" + std::to_string(rule["errnoRet"].get<int>());
    for (const auto& a : rule["args"])
      s += " arg" + std::to_string(a["index"].get<int>()) + " " + a["op"].get<std::string>() + " " +
           std::to_string(a["value"].get<std::uint64_t>()) + " " +
           std::to_string(a["valueTwo"].get<std::uint64_t>());
    out.push_back(s);
  }
  return out;
}

TEST(SeccompDefaultTest, SectionHasTheOciRuntimeSpecShape) {
  OrderedJson s = defaultSeccompSection(kDockerCaps, amd64());
  const std::set<std::string> top_keys = {"defaultAction", "defaultErrnoRet", "architectures",
                                          "flags",         "listenerPath",    "listenerMetadata",
                                          "syscalls"};
  for (const auto& item : s.items())
    EXPECT_TRUE(top_keys.count(item.key())) << item.key();
  EXPECT_EQ(s["defaultAction"], "SCMP_ACT_ERRNO");
  EXPECT_EQ(s["defaultErrnoRet"], 38);  // ENOSYS for syscalls the table does not know
  EXPECT_EQ(s["architectures"],
            OrderedJson({"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}));
  ASSERT_TRUE(s["syscalls"].is_array());
  EXPECT_GT(s["syscalls"].size(), 10u);
  const std::set<std::string> rule_keys = {"names", "action", "errnoRet", "args"};
  const std::set<std::string> ops = {"SCMP_CMP_NE",       "SCMP_CMP_LT", "SCMP_CMP_LE",
                                     "SCMP_CMP_EQ",       "SCMP_CMP_GE", "SCMP_CMP_GT",
                                     "SCMP_CMP_MASKED_EQ"};
  std::size_t names = 0;
  for (const auto& rule : s["syscalls"]) {
    for (const auto& item : rule.items())
      EXPECT_TRUE(rule_keys.count(item.key())) << item.key();
    ASSERT_TRUE(rule["names"].is_array());
    EXPECT_FALSE(rule["names"].empty());
    for (const auto& n : rule["names"]) {
      ASSERT_TRUE(n.is_string());
      EXPECT_FALSE(n.get<std::string>().empty());
      ++names;
    }
    ASSERT_TRUE(rule["action"].is_string());
    EXPECT_TRUE(rule["action"] == "SCMP_ACT_ALLOW" || rule["action"] == "SCMP_ACT_ERRNO");
    if (rule.contains("errnoRet")) {
      EXPECT_EQ(rule["action"], "SCMP_ACT_ERRNO");
      EXPECT_TRUE(rule["errnoRet"].is_number_unsigned());
    }
    if (!rule.contains("args")) continue;
    for (const auto& a : rule["args"]) {
      EXPECT_TRUE(a["index"].is_number_unsigned());
      EXPECT_LE(a["index"].get<int>(), 5);
      EXPECT_TRUE(a["value"].is_number_unsigned());
      EXPECT_TRUE(a["valueTwo"].is_number_unsigned());
      EXPECT_TRUE(ops.count(a["op"].get<std::string>())) << a["op"];
    }
  }
  EXPECT_GT(names, 300u);  // an allowlist, not a denylist
}

TEST(SeccompDefaultTest, OrdinarySyscallsAreAllowed) {
  OrderedJson s = defaultSeccompSection(kDockerCaps, amd64());
  for (const char* name : {"read", "write", "openat", "execve", "fork", "vfork", "wait4", "pipe2",
                           "mmap", "futex", "rt_sigaction", "socketpair", "connect", "getrandom",
                           "statx", "ptrace", "chroot", "arch_prctl", "fchmodat2"})
    EXPECT_EQ(verdict(s, name), "allow") << name;
}

TEST(SeccompDefaultTest, PrivilegedSyscallsFailWithEpermWithoutTheirCapability) {
  OrderedJson s = defaultSeccompSection(kDockerCaps, amd64());
  for (const char* name : {"mount",
                           "umount2",
                           "unshare",
                           "setns",
                           "sethostname",
                           "bpf",
                           "perf_event_open",
                           "init_module",
                           "finit_module",
                           "delete_module",
                           "reboot",
                           "kcmp",
                           "iopl",
                           "acct",
                           "settimeofday",
                           "clock_settime",
                           "open_by_handle_at",
                           "syslog",
                           "fsopen",
                           "vhangup",
                           "mbind",
                           "keyctl",
                           "add_key",
                           "request_key",
                           "kexec_load",
                           "kexec_file_load",
                           "swapon",
                           "swapoff",
                           "pivot_root",
                           "userfaultfd",
                           "io_uring_setup"})
    EXPECT_EQ(verdict(s, name), "errno:1") << name;
}

TEST(SeccompDefaultTest, UnknownSyscallsGetEnosys) {
  OrderedJson s = defaultSeccompSection(kDockerCaps, amd64());
  EXPECT_EQ(verdict(s, "listmount"), "default:38");
  EXPECT_EQ(verdict(s, "some_future_syscall"), "default:38");
}

TEST(SeccompDefaultTest, CapabilitiesEnableTheirSyscalls) {
  OrderedJson admin = defaultSeccompSection(withCaps({"CAP_SYS_ADMIN"}), amd64());
  for (const char* name : {"mount", "umount2", "unshare", "setns", "sethostname", "bpf",
                           "perf_event_open", "syslog", "clone", "clone3"})
    EXPECT_EQ(verdict(admin, name), "allow") << name;
  EXPECT_EQ(verdict(admin, "reboot"), "errno:1");
  EXPECT_EQ(verdict(admin, "keyctl"), "errno:1");  // no capability opens the keyring

  OrderedJson ptrace = defaultSeccompSection(withCaps({"CAP_SYS_PTRACE"}), amd64());
  EXPECT_EQ(verdict(ptrace, "kcmp"), "allow");
  EXPECT_EQ(verdict(ptrace, "process_madvise"), "allow");
  EXPECT_EQ(verdict(ptrace, "mount"), "errno:1");

  OrderedJson boot = defaultSeccompSection(withCaps({"CAP_SYS_BOOT"}), amd64());
  EXPECT_EQ(verdict(boot, "reboot"), "allow");
  OrderedJson module = defaultSeccompSection(withCaps({"CAP_SYS_MODULE"}), amd64());
  EXPECT_EQ(verdict(module, "init_module"), "allow");
  OrderedJson bpf = defaultSeccompSection(withCaps({"CAP_BPF"}), amd64());
  EXPECT_EQ(verdict(bpf, "bpf"), "allow");
  EXPECT_EQ(verdict(bpf, "perf_event_open"), "errno:1");
  OrderedJson syslog = defaultSeccompSection(withCaps({"CAP_SYSLOG"}), amd64());
  EXPECT_EQ(verdict(syslog, "syslog"), "allow");

  // Without CAP_SYS_CHROOT even chroot goes.
  OrderedJson none = defaultSeccompSection({}, amd64());
  EXPECT_EQ(verdict(none, "chroot"), "errno:1");
  EXPECT_EQ(verdict(none, "read"), "allow");
}

TEST(SeccompDefaultTest, CloneWithNamespaceFlagsIsRefusedAndClone3FallsBack) {
  OrderedJson s = defaultSeccompSection(kDockerCaps, amd64());
  EXPECT_EQ(verdict(s, "clone3"), "errno:38");
  std::vector<std::string> rules = argRules(s, "clone");
  ASSERT_EQ(rules.size(), 8u);
  EXPECT_EQ(rules[0], "SCMP_ACT_ALLOW arg0 SCMP_CMP_MASKED_EQ 2114060288 0");
  std::set<std::string> refused(rules.begin() + 1, rules.end());
  for (std::uint64_t flag : {0x00020000ULL, 0x02000000ULL, 0x04000000ULL, 0x08000000ULL,
                             0x10000000ULL, 0x20000000ULL, 0x40000000ULL}) {
    std::string f = std::to_string(flag);
    EXPECT_TRUE(refused.count("SCMP_ACT_ERRNO/1 arg0 SCMP_CMP_MASKED_EQ " + f + " " + f)) << f;
  }
  OrderedJson admin = defaultSeccompSection(withCaps({"CAP_SYS_ADMIN"}), amd64());
  EXPECT_TRUE(argRules(admin, "clone").empty());
}

TEST(SeccompDefaultTest, PersonalityAndSocketArguments) {
  OrderedJson s = defaultSeccompSection(kDockerCaps, amd64());
  EXPECT_THAT(
      argRules(s, "personality"),
      ElementsAre("SCMP_ACT_ALLOW arg0 SCMP_CMP_EQ 0 0", "SCMP_ACT_ALLOW arg0 SCMP_CMP_EQ 8 0",
                  "SCMP_ACT_ALLOW arg0 SCMP_CMP_EQ 131072 0",
                  "SCMP_ACT_ALLOW arg0 SCMP_CMP_EQ 131080 0",
                  "SCMP_ACT_ALLOW arg0 SCMP_CMP_EQ 4294967295 0"));
  EXPECT_THAT(argRules(s, "socket"), ElementsAre("SCMP_ACT_ALLOW arg0 SCMP_CMP_NE 40 0",
                                                 "SCMP_ACT_ERRNO/1 arg0 SCMP_CMP_EQ 40 0"));
}

TEST(SeccompDefaultTest, ArchitectureSpecificRules) {
  OrderedJson arm = defaultSeccompSection(kDockerCaps, arm64());
  EXPECT_EQ(arm["architectures"], OrderedJson({"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"}));
  EXPECT_EQ(verdict(arm, "set_tls"), "allow");
  EXPECT_EQ(verdict(arm, "arch_prctl"), "default:38");
  OrderedJson x86 = defaultSeccompSection(kDockerCaps, amd64());
  EXPECT_EQ(verdict(x86, "set_tls"), "default:38");
  EXPECT_EQ(verdict(x86, "modify_ldt"), "allow");
}

// libseccomp refuses two unconditional rules with different actions for one syscall, and crun
// then fails every start: no cap set may produce that.
TEST(SeccompDefaultTest, NoSyscallGetsTwoUnconditionalVerdicts) {
  std::vector<std::vector<std::string>> cap_sets = {
      {},
      kDockerCaps,
      withCaps({"CAP_SYS_ADMIN"}),
      withCaps({"CAP_BPF", "CAP_PERFMON"}),
      withCaps({"CAP_SYS_ADMIN", "CAP_BPF", "CAP_PERFMON", "CAP_SYSLOG", "CAP_SYS_PTRACE",
                "CAP_SYS_BOOT", "CAP_SYS_MODULE", "CAP_SYS_TIME", "CAP_SYS_NICE",
                "CAP_DAC_READ_SEARCH", "CAP_SYS_RAWIO", "CAP_SYS_PACCT", "CAP_SYS_TTY_CONFIG"})};
  for (const auto& caps : cap_sets) {
    for (const SeccompTarget& target : {amd64(), arm64()}) {
      OrderedJson s = defaultSeccompSection(caps, target);
      std::map<std::string, int> unconditional;
      for (const auto& rule : s["syscalls"]) {
        if (rule.contains("args")) continue;
        for (const auto& n : rule["names"])
          ++unconditional[n.get<std::string>()];
      }
      for (const auto& [name, count] : unconditional)
        EXPECT_EQ(count, 1) << name << " with " << caps.size() << " caps on " << target.arch;
    }
  }
}

TEST(SeccompDefaultTest, ResolvedSectionParsesBackAsAProfile) {
  OrderedJson s = defaultSeccompSection(kDockerCaps, amd64());
  ASSERT_OK_AND_ASSIGN(SeccompProfile p, parseSeccompProfile(s.dump(), "resolved"));
  EXPECT_EQ(p.default_errno_ret, 38u);
  ASSERT_OK_AND_ASSIGN(OrderedJson again, resolveSeccompProfile(p, kDockerCaps, amd64()));
  EXPECT_EQ(again, s);
}

TEST(SeccompOciConfigTest, DefaultUnconfinedAndCustom) {
  ContainerSpec spec;
  spec.rootfs.dir = "/rootfs";
  spec.process.args = {"/bin/true"};
  OciConfigInputs in;
  in.rootfs_path = "/rootfs";
  ASSERT_OK_AND_ASSIGN(OrderedJson config, makeOciConfig(spec, in));
  ASSERT_TRUE(config["linux"].contains("seccomp"));
  EXPECT_EQ(config["linux"]["seccomp"],
            defaultSeccompSection(
                config["process"]["capabilities"]["bounding"].get<std::vector<std::string>>()));
  EXPECT_EQ(verdict(config["linux"]["seccomp"], "unshare"), "errno:1");

  ASSERT_OK_AND_ASSIGN(spec.seccomp, parseSeccompOption("unconfined"));
  ASSERT_OK_AND_ASSIGN(config, makeOciConfig(spec, in));
  EXPECT_FALSE(config["linux"].contains("seccomp"));

  ASSERT_OK_AND_ASSIGN(auto dir, TempDir::create("cairn-seccomp"));
  ASSERT_OK(writeFileDurable(dir.path() / "p.json",
                             R"({"defaultAction": "SCMP_ACT_ALLOW",
                                 "syscalls": [{"names": ["mkdir", "mkdirat"],
                                               "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]})"));
  ASSERT_OK_AND_ASSIGN(spec.seccomp, parseSeccompOption((dir.path() / "p.json").string()));
  EXPECT_EQ(spec.seccomp.mode, SeccompMode::kCustom);
  ASSERT_OK_AND_ASSIGN(config, makeOciConfig(spec, in));
  EXPECT_EQ(config["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
  EXPECT_EQ(verdict(config["linux"]["seccomp"], "mkdirat"), "errno:13");

  spec.seccomp.custom.reset();
  EXPECT_THAT(makeOciConfig(spec, in),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("custom profile")));
}

TEST(SeccompParseTest, DockerFormatResolvesConditionsAgainstCapsArchAndKernel) {
  constexpr const char* kProfile = R"({
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "archMap": [
      {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
      {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": null}
    ],
    "syscalls": [
      {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "comment": "basics"},
      {"name": "mount", "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
      {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
      {"names": ["kcmp"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.0"}},
      {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
      {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
       "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]}
    ]
  })";
  ASSERT_OK_AND_ASSIGN(SeccompProfile p, parseSeccompProfile(kProfile, "docker.json"));
  ASSERT_OK_AND_ASSIGN(OrderedJson s, resolveSeccompProfile(p, kDockerCaps, amd64()));
  EXPECT_EQ(s["architectures"], OrderedJson({"SCMP_ARCH_X86_64", "SCMP_ARCH_X86"}));
  EXPECT_EQ(s["defaultErrnoRet"], 1);
  EXPECT_EQ(verdict(s, "read"), "allow");
  EXPECT_EQ(verdict(s, "mount"), "default:1");
  EXPECT_EQ(verdict(s, "ptrace"), "allow");
  EXPECT_EQ(verdict(s, "kcmp"), "default:1");  // excluded on kernels >= 5.0
  EXPECT_EQ(verdict(s, "arch_prctl"), "allow");
  EXPECT_THAT(argRules(s, "socket"), ElementsAre("SCMP_ACT_ALLOW arg0 SCMP_CMP_NE 40 0"));

  ASSERT_OK_AND_ASSIGN(s, resolveSeccompProfile(p, withCaps({"CAP_SYS_ADMIN"}),
                                                {"arm64", "SCMP_ARCH_AARCH64", 4, 4}));
  EXPECT_EQ(s["architectures"], OrderedJson({"SCMP_ARCH_AARCH64"}));
  EXPECT_EQ(verdict(s, "mount"), "allow");
  EXPECT_EQ(verdict(s, "ptrace"), "default:1");  // 4.4 < 4.8
  EXPECT_EQ(verdict(s, "kcmp"), "allow");
  EXPECT_EQ(verdict(s, "arch_prctl"), "default:1");
}

TEST(SeccompParseTest, AcceptsABareOciSection) {
  ASSERT_OK_AND_ASSIGN(SeccompProfile p,
                       parseSeccompProfile(R"({"defaultAction": "SCMP_ACT_KILL_PROCESS",
                              "x-generated-by": "some tool",
                              "architectures": ["SCMP_ARCH_X86_64"],
                              "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                              "syscalls": [{"names": ["exit_group"], "action": "SCMP_ACT_ALLOW"},
                                           {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                                            "args": [{"index": 0, "value": 255,
                                                      "valueTwo": 8,
                                                      "op": "SCMP_CMP_MASKED_EQ"}]}]})",
                                           "oci.json"));
  ASSERT_OK_AND_ASSIGN(OrderedJson s, resolveSeccompProfile(p, {}, amd64()));
  EXPECT_EQ(s["defaultAction"], "SCMP_ACT_KILL_PROCESS");
  EXPECT_FALSE(s.contains("defaultErrnoRet"));
  EXPECT_EQ(s["architectures"], OrderedJson({"SCMP_ARCH_X86_64"}));
  EXPECT_EQ(s["flags"], OrderedJson({"SECCOMP_FILTER_FLAG_LOG"}));
  EXPECT_THAT(argRules(s, "personality"),
              ElementsAre("SCMP_ACT_ALLOW arg0 SCMP_CMP_MASKED_EQ 255 8"));
}

TEST(SeccompParseTest, LoadsPodmansProfileFromContainersCommon) {
  const char* path = "/usr/share/containers/seccomp.json";
  if (::access(path, R_OK) != 0) GTEST_SKIP() << path << " (Debian containers-common) is missing";
  ASSERT_OK_AND_ASSIGN(SeccompProfile p, loadSeccompProfile(path));
  ASSERT_OK_AND_ASSIGN(OrderedJson s, resolveSeccompProfile(p, kDockerCaps, amd64()));
  EXPECT_EQ(verdict(s, "read"), "allow");
  EXPECT_EQ(verdict(s, "bpf"), "errno:1");
}

struct BadProfile {
  const char* json;
  const char* message;
};

TEST(SeccompParseTest, RejectsBadProfilesWithClearErrors) {
  const std::vector<BadProfile> cases = {
      {"{", "bad.json"},
      {"[]", "must be a JSON object"},
      {R"({"syscalls": []})", "'defaultAction' is missing"},
      {R"({"defaultAction": "SCMP_ACT_DENY"})", "unknown action 'SCMP_ACT_DENY'"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1})",
       "defaultErrnoRet: only applies to SCMP_ACT_ERRNO"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscall": []})",
       "unknown key 'syscall' (did you mean 'syscalls'?)"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
           "archMap": []})",
       "'architectures' and 'archMap' were both given"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["x86_64"]})",
       "unknown architecture 'x86_64'"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["FLAG_X"]})", "unknown flag 'FLAG_X'"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {}})", "syscalls: must be an array"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ERRNO"}]})",
       "syscalls[0]: no syscall names"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW",
           "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ERRNO"}]})",
       "'name' and 'names' were both given"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"]}]})",
       "syscalls[0] (mkdir): 'action' is missing"},
      {R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
           {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
           {"names": ["mkdir"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]})",
       "syscalls[1] (mkdir).errnoRet: only applies to SCMP_ACT_ERRNO"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["clone"],
           "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]})",
       "args[0].index: must be 0..5"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["clone"],
           "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]})",
       "args[0].value: must be a non-negative integer"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["clone"],
           "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "EQ"}]}]})",
       "unknown operator 'EQ'"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mount"],
           "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "new"}}]})",
       "'new' is not a kernel version"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mount"],
           "action": "SCMP_ACT_ERRNO", "includes": {"cap": []}}]})",
       "includes: unknown key 'cap' (did you mean 'caps'?)"},
      {R"({"defaultAction": "SCMP_ACT_NOTIFY"})", "SCMP_ACT_NOTIFY needs a 'listenerPath'"},
  };
  for (const BadProfile& c : cases) {
    auto result = parseSeccompProfile(c.json, "bad.json");
    EXPECT_THAT(result, StatusIs(StatusCode::kInvalidArgument, HasSubstr(c.message))) << c.json;
    if (!result.ok()) {
      EXPECT_THAT(result.status().message(), HasSubstr("seccomp profile bad.json")) << c.json;
    }
  }
}

TEST(SeccompParseTest, OptionValuesAndFileErrors) {
  ASSERT_OK_AND_ASSIGN(SeccompOption o, parseSeccompOption("unconfined"));
  EXPECT_EQ(o.mode, SeccompMode::kUnconfined);
  ASSERT_OK_AND_ASSIGN(o, parseSeccompOption("default"));
  EXPECT_EQ(o.mode, SeccompMode::kDefault);
  EXPECT_EQ(o.custom, nullptr);
  EXPECT_THAT(parseSeccompOption(""), StatusIs(StatusCode::kInvalidArgument,
                                               HasSubstr("'unconfined', 'default' or the path")));
  EXPECT_THAT(parseSeccompOption("/nonexistent/profile.json"),
              StatusIs(StatusCode::kNotFound, HasSubstr("/nonexistent/profile.json")));
  ASSERT_OK_AND_ASSIGN(auto dir, TempDir::create("cairn-seccomp"));
  ASSERT_OK(writeFileDurable(dir.path() / "empty.json", "  \n"));
  EXPECT_THAT(loadSeccompProfile(dir.path() / "empty.json"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("empty.json: the file is empty")));
  ASSERT_OK(writeFileDurable(dir.path() / "broken.json", "{\"defaultAction\": }"));
  EXPECT_THAT(parseSeccompOption((dir.path() / "broken.json").string()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("broken.json")));
  EXPECT_EQ(seccompModeName(SeccompMode::kCustom), "custom");
}

// ---------------------------------------------------------------------------------------------
// The section as text (the filter cache's key): byte for byte the dump of the JSON.
// ---------------------------------------------------------------------------------------------

// Every capability a rule of the default table is conditioned on.
const std::vector<std::string> kGatedCaps = {
    "CAP_SYS_ADMIN", "CAP_DAC_READ_SEARCH", "CAP_SYS_BOOT",  "CAP_SYS_CHROOT", "CAP_SYS_MODULE",
    "CAP_SYS_PACCT", "CAP_SYS_PTRACE",      "CAP_SYS_RAWIO", "CAP_SYS_TIME",   "CAP_SYS_TTY_CONFIG",
    "CAP_SYS_NICE",  "CAP_SYSLOG",          "CAP_BPF",       "CAP_PERFMON"};

TEST(SeccompTextTest, DefaultProfileTextIsTheDumpOfItsSectionForManyCapSetsAndTargets) {
  std::vector<std::vector<std::string>> cap_sets = {{}, kDockerCaps, withCaps(kGatedCaps)};
  for (const std::string& cap : kGatedCaps) {
    cap_sets.push_back(withCaps({cap}));
    cap_sets.push_back({cap});
  }
  // A fixed pseudo-random sample of the 2^14 subsets of the gated capabilities.
  std::uint32_t lcg = 12345;
  for (int i = 0; i < 64; ++i) {
    lcg = lcg * 1664525u + 1013904223u;
    std::vector<std::string> caps = kDockerCaps;
    for (std::size_t b = 0; b < kGatedCaps.size(); ++b)
      if ((lcg >> (b + 8)) & 1u) caps.push_back(kGatedCaps[b]);
    cap_sets.push_back(caps);
  }
  const std::vector<SeccompTarget> targets = {amd64(),
                                              arm64(),
                                              {"x32", "SCMP_ARCH_X32", 5, 10},
                                              {"386", "SCMP_ARCH_X86", 0, 0},
                                              {"arm", "SCMP_ARCH_ARM", 3, 2}};
  std::set<std::string> distinct;
  for (const auto& caps : cap_sets) {
    for (const SeccompTarget& target : targets) {
      ASSERT_OK_AND_ASSIGN(OrderedJson section,
                           resolveSeccompProfile(defaultSeccompProfile(), caps, target));
      ASSERT_OK_AND_ASSIGN(std::string text,
                           resolveSeccompProfileText(defaultSeccompProfile(), caps, target));
      ASSERT_EQ(text, section.dump()) << caps.size() << " caps on " << target.arch;
      distinct.insert(text);
    }
  }
  // The text follows the resolved profile: capability sets and architectures that change the
  // section change the key (the filter cache never hands one set's filter to another).
  EXPECT_GT(distinct.size(), 2 * kGatedCaps.size());
}

TEST(SeccompTextTest, CustomProfilesEscapeLikeTheJsonLibrary) {
  constexpr const char* kProfile = R"({
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
    "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
    "listenerPath": "/run/a \"quoted\" \\ path\twith\u0001control",
    "listenerMetadata": "k=v\nline",
    "syscalls": [
      {"names": ["read", "we\"ird\\name", "write"], "action": "SCMP_ACT_ALLOW"},
      {"names": ["read"], "action": "SCMP_ACT_ALLOW", "comment": "dropped: same verdict"},
      {"names": ["read", "open"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
      {"names": ["open"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
      {"names": ["open"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2},
      {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
       "args": [{"index": 0, "value": 18446744073709551615, "valueTwo": 0, "op": "SCMP_CMP_NE"},
                {"index": 5, "value": 1, "valueTwo": 7, "op": "SCMP_CMP_MASKED_EQ"}]},
      {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
       "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
      {"names": ["mount"], "action": "SCMP_ACT_TRACE", "errnoRet": 4294967295,
       "includes": {"caps": ["CAP_SYS_ADMIN"]}}
    ]
  })";
  ASSERT_OK_AND_ASSIGN(SeccompProfile p, parseSeccompProfile(kProfile, "custom.json"));
  for (const auto& caps : {std::vector<std::string>{}, withCaps({"CAP_SYS_ADMIN"})}) {
    ASSERT_OK_AND_ASSIGN(OrderedJson section, resolveSeccompProfile(p, caps, amd64()));
    ASSERT_OK_AND_ASSIGN(std::string text, resolveSeccompProfileText(p, caps, amd64()));
    EXPECT_EQ(text, section.dump());
    ASSERT_OK_AND_ASSIGN(OrderedJson back, parseOrderedJson(text));
    EXPECT_EQ(back, section);
  }
  // The duplicate unconditional names are gone, rules with arguments are all kept.
  ASSERT_OK_AND_ASSIGN(OrderedJson s, resolveSeccompProfile(p, {}, amd64()));
  EXPECT_EQ(s["syscalls"].size(), 5u);  // mount needs CAP_SYS_ADMIN
  EXPECT_EQ(s["syscalls"][1]["names"], OrderedJson({"read", "open"}));
  EXPECT_EQ(s["syscalls"][2]["names"], OrderedJson({"open"}));
  EXPECT_EQ(s["syscalls"][2]["errnoRet"], 2);
  EXPECT_EQ(argRules(s, "socket").size(), 2u);
}

TEST(SeccompTextTest, NonAsciiTextFallsBackToTheJsonLibrary) {
  SeccompProfile p;
  p.default_action = "SCMP_ACT_ALLOW";
  p.architectures = {"SCMP_ARCH_X86_64"};
  SeccompRule r;
  r.names = {"caf\xc3\xa9", "mkdir"};  // valid UTF-8
  r.action = "SCMP_ACT_ERRNO";
  r.errno_ret = 1;
  p.syscalls.push_back(r);
  ASSERT_OK_AND_ASSIGN(OrderedJson section, resolveSeccompProfile(p, {}, amd64()));
  ASSERT_OK_AND_ASSIGN(std::string text, resolveSeccompProfileText(p, {}, amd64()));
  EXPECT_EQ(text, section.dump());

  p.syscalls[0].names = {"bad\xff"};  // not UTF-8: an error, not a crash or a wrong key
  EXPECT_THAT(resolveSeccompProfileText(p, {}, amd64()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("seccomp profile")));
}

TEST(SeccompTextTest, ResolutionErrorsAreReportedForTheTextToo) {
  SeccompProfile p;
  EXPECT_THAT(resolveSeccompProfileText(p, {}, amd64()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("no default action")));
  p.default_action = "SCMP_ACT_ALLOW";
  p.architectures = {"SCMP_ARCH_X86_64"};
  p.arch_map = {{"SCMP_ARCH_X86_64", {}}};
  EXPECT_THAT(resolveSeccompProfileText(p, {}, amd64()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("'architectures' and 'archMap'")));
}

TEST(SeccompTextTest, SectionTextForEachMode) {
  ASSERT_OK_AND_ASSIGN(auto unconfined,
                       seccompSectionTextFor(SeccompOption{SeccompMode::kUnconfined, nullptr},
                                             kDockerCaps, amd64()));
  EXPECT_FALSE(unconfined.has_value());

  ASSERT_OK_AND_ASSIGN(auto def, seccompSectionTextFor(SeccompOption{}, kDockerCaps, amd64()));
  ASSERT_TRUE(def.has_value());
  EXPECT_EQ(def->text, defaultSeccompSection(kDockerCaps, amd64()).dump());
  EXPECT_TRUE(def->rules_only);
  // Memoized, and still exact on the next call and for another capability set.
  ASSERT_OK_AND_ASSIGN(auto again, seccompSectionTextFor(SeccompOption{}, kDockerCaps, amd64()));
  EXPECT_EQ(again->text, def->text);
  ASSERT_OK_AND_ASSIGN(
      auto admin, seccompSectionTextFor(SeccompOption{}, withCaps({"CAP_SYS_ADMIN"}), amd64()));
  EXPECT_NE(admin->text, def->text);
  EXPECT_EQ(admin->text, defaultSeccompSection(withCaps({"CAP_SYS_ADMIN"}), amd64()).dump());
  ASSERT_OK_AND_ASSIGN(auto arm, seccompSectionTextFor(SeccompOption{}, kDockerCaps, arm64()));
  EXPECT_NE(arm->text, def->text);

  ASSERT_OK_AND_ASSIGN(SeccompProfile with_flags,
                       parseSeccompProfile(R"({"defaultAction": "SCMP_ACT_ALLOW",
                                               "flags": ["SECCOMP_FILTER_FLAG_LOG"]})",
                                           "flags.json"));
  SeccompOption custom{SeccompMode::kCustom,
                       std::make_shared<const SeccompProfile>(std::move(with_flags))};
  ASSERT_OK_AND_ASSIGN(auto c, seccompSectionTextFor(custom, kDockerCaps, amd64()));
  ASSERT_TRUE(c.has_value());
  EXPECT_FALSE(c->rules_only);  // crun must still see the flags in config.json
  ASSERT_OK_AND_ASSIGN(auto c_json, seccompSectionFor(custom, kDockerCaps, amd64()));
  EXPECT_EQ(c->text, c_json->dump());

  ASSERT_OK_AND_ASSIGN(SeccompProfile rules,
                       parseSeccompProfile(R"({"defaultAction": "SCMP_ACT_ALLOW",
                           "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]})",
                                           "rules.json"));
  custom.custom = std::make_shared<const SeccompProfile>(std::move(rules));
  ASSERT_OK_AND_ASSIGN(c, seccompSectionTextFor(custom, kDockerCaps, amd64()));
  EXPECT_TRUE(c->rules_only);

  custom.custom.reset();
  EXPECT_THAT(seccompSectionTextFor(custom, kDockerCaps, amd64()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("without a loaded profile")));
}

TEST(SeccompTextTest, ConfigWithoutTheSectionPlusTheTextIsTheFullConfig) {
  ContainerSpec spec;
  spec.rootfs.dir = "/rootfs";
  spec.process.args = {"/bin/true"};
  OciConfigInputs in;
  in.rootfs_path = "/rootfs";
  ASSERT_OK_AND_ASSIGN(OrderedJson full, makeOciConfig(spec, in));
  in.with_seccomp = false;
  ASSERT_OK_AND_ASSIGN(OrderedJson without, makeOciConfig(spec, in));
  EXPECT_FALSE(without["linux"].contains("seccomp"));
  EXPECT_EQ(full["process"]["capabilities"]["bounding"].get<std::vector<std::string>>(),
            defaultCapabilities());
  ASSERT_OK_AND_ASSIGN(auto text, seccompSectionTextFor(spec.seccomp, defaultCapabilities()));
  ASSERT_TRUE(text.has_value());
  EXPECT_EQ(text->text, full["linux"]["seccomp"].dump());
  ASSERT_OK_AND_ASSIGN(without["linux"]["seccomp"], parseOrderedJson(text->text));
  EXPECT_EQ(without.dump(), full.dump());

  // A bad custom setting is still an error without the section.
  spec.seccomp.mode = SeccompMode::kCustom;
  EXPECT_THAT(makeOciConfig(spec, in),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("custom profile")));
}

// ---------------------------------------------------------------------------------------------
// compileSeccompFilter: what the compiled program answers, run through a classic-BPF
// interpreter here, for every syscall number of every architecture and a spread of arguments.
// ---------------------------------------------------------------------------------------------

void expectSameVerdicts(const std::string& expected, const std::string& actual) {
  std::vector<std::string> report;
  EXPECT_EQ(countDifferences(expected, actual, &report), 0u);
  for (const std::string& line : report)
    ADD_FAILURE() << line;
}

#if defined(__x86_64__)
TEST(SeccompCompileTest, DefaultProfileVerdictsOnX86) {
  OrderedJson section = defaultSeccompSection(kDockerCaps, amd64());
  for (SeccompFilterLayout layout :
       {SeccompFilterLayout::kLinear, SeccompFilterLayout::kBinaryTree}) {
    ASSERT_OK_AND_ASSIGN(std::string bpf, compileSeccompFilter(section, layout));
    ASSERT_GT(bpf.size(), 0u);
    ASSERT_EQ(bpf.size() % sizeof(sock_filter), 0u);
    constexpr std::uint32_t kAllow = SECCOMP_RET_ALLOW;
    constexpr std::uint32_t kEperm = SECCOMP_RET_ERRNO | EPERM;
    constexpr std::uint32_t kEnosys = SECCOMP_RET_ERRNO | ENOSYS;
    EXPECT_EQ(call(bpf, AUDIT_ARCH_X86_64, 0), kAllow);              // read
    EXPECT_EQ(call(bpf, AUDIT_ARCH_X86_64, 165), kEperm);            // mount
    EXPECT_EQ(call(bpf, AUDIT_ARCH_X86_64, 250), kEperm);            // keyctl
    EXPECT_EQ(call(bpf, AUDIT_ARCH_X86_64, 1000), kEnosys);          // unknown
    EXPECT_EQ(call(bpf, AUDIT_ARCH_X86_64, 56, 0x11), kAllow);       // clone(SIGCHLD)
    EXPECT_EQ(call(bpf, AUDIT_ARCH_X86_64, 56, 0x20011), kEperm);    // clone(CLONE_NEWNS)
    EXPECT_EQ(call(bpf, AUDIT_ARCH_X86_64, 435), kEnosys);           // clone3 → glibc falls back
    EXPECT_EQ(call(bpf, AUDIT_ARCH_X86_64, 41, 2), kAllow);          // socket(AF_INET)
    EXPECT_EQ(call(bpf, AUDIT_ARCH_X86_64, 41, 40), kEperm);         // socket(AF_VSOCK)
    EXPECT_EQ(call(bpf, AUDIT_ARCH_X86_64, 135, 0), kAllow);         // personality(PER_LINUX)
    EXPECT_EQ(call(bpf, AUDIT_ARCH_X86_64, 135, 0x40000), kEnosys);  // ADDR_NO_RANDOMIZE
    EXPECT_EQ(call(bpf, AUDIT_ARCH_I386, 3), kAllow);                // i386 read
    EXPECT_EQ(call(bpf, AUDIT_ARCH_I386, 21), kEperm);               // i386 mount
    EXPECT_EQ(call(bpf, AUDIT_ARCH_X86_64, 0x40000000), kAllow);     // x32 read
    EXPECT_EQ(call(bpf, AUDIT_ARCH_AARCH64, 63), SECCOMP_RET_KILL_THREAD);  // not listed
  }
}
#endif

TEST(SeccompCompileTest, BinaryTreeGivesTheLinearFiltersVerdicts) {
  for (const auto& caps : {kDockerCaps, withCaps({"CAP_SYS_ADMIN"}), std::vector<std::string>{}}) {
    OrderedJson section = defaultSeccompSection(caps);
    ASSERT_OK_AND_ASSIGN(std::string linear,
                         compileSeccompFilter(section, SeccompFilterLayout::kLinear));
    ASSERT_OK_AND_ASSIGN(std::string tree,
                         compileSeccompFilter(section, SeccompFilterLayout::kBinaryTree));
    EXPECT_NE(linear, tree);
    expectSameVerdicts(linear, tree);
  }
  // The comparison sees a one-syscall change (mount allowed) in either layout.
  OrderedJson section = defaultSeccompSection(kDockerCaps);
  ASSERT_OK_AND_ASSIGN(std::string tree, compileSeccompFilter(section));
  section["syscalls"][0]["names"].push_back("mount");
  ASSERT_OK_AND_ASSIGN(std::string changed, compileSeccompFilter(section));
  EXPECT_GT(countDifferences(tree, changed), 0u);
}

TEST(SeccompCompileTest, CustomActionsAndArgumentRules) {
  constexpr const char* kProfile = R"({
    "defaultAction": "SCMP_ACT_KILL_PROCESS",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
    "syscalls": [
      {"names": ["read", "exit_group", "no_such_syscall"], "action": "SCMP_ACT_ALLOW"},
      {"names": ["write"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
       "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
      {"names": ["write"], "action": "SCMP_ACT_ALLOW",
       "args": [{"index": 0, "value": 10, "op": "SCMP_CMP_GT"},
                {"index": 5, "value": 6, "valueTwo": 2, "op": "SCMP_CMP_MASKED_EQ"}]},
      {"names": ["openat"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
      {"names": ["close"], "action": "SCMP_ACT_LOG"},
      {"names": ["getpid"], "action": "SCMP_ACT_TRAP"},
      {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
      {"names": ["rmdir"], "action": "SCMP_ACT_KILL_PROCESS"}
    ]
  })";
  ASSERT_OK_AND_ASSIGN(SeccompProfile p, parseSeccompProfile(kProfile, "custom.json"));
  ASSERT_OK_AND_ASSIGN(OrderedJson section, resolveSeccompProfile(p, {}, amd64()));
  ASSERT_OK_AND_ASSIGN(std::string linear,
                       compileSeccompFilter(section, SeccompFilterLayout::kLinear));
  ASSERT_OK_AND_ASSIGN(std::string tree,
                       compileSeccompFilter(section, SeccompFilterLayout::kBinaryTree));
  expectSameVerdicts(linear, tree);
#if defined(__x86_64__)
  for (const std::string& bpf : {linear, tree}) {
    EXPECT_EQ(call(bpf, AUDIT_ARCH_X86_64, 0), SECCOMP_RET_ALLOW);
    EXPECT_EQ(call(bpf, AUDIT_ARCH_X86_64, 1, 1), SECCOMP_RET_ERRNO | 5u);  // ORed conditions
    EXPECT_EQ(call(bpf, AUDIT_ARCH_X86_64, 1, 2), SECCOMP_RET_ERRNO | 5u);
    EXPECT_EQ(call(bpf, AUDIT_ARCH_X86_64, 1, 3), SECCOMP_RET_KILL_PROCESS);
    EXPECT_EQ(call(bpf, AUDIT_ARCH_X86_64, 1, 11, 2), SECCOMP_RET_ALLOW);  // both conditions
    EXPECT_EQ(call(bpf, AUDIT_ARCH_X86_64, 1, 11, 1), SECCOMP_RET_KILL_PROCESS);
    EXPECT_EQ(call(bpf, AUDIT_ARCH_X86_64, 257), SECCOMP_RET_TRACE | 7u);
    EXPECT_EQ(call(bpf, AUDIT_ARCH_X86_64, 3), SECCOMP_RET_LOG);
    EXPECT_EQ(call(bpf, AUDIT_ARCH_X86_64, 39), SECCOMP_RET_TRAP);
    EXPECT_EQ(call(bpf, AUDIT_ARCH_X86_64, 83), SECCOMP_RET_ERRNO | EPERM);  // no errnoRet
    EXPECT_EQ(call(bpf, AUDIT_ARCH_X86_64, 84), SECCOMP_RET_KILL_PROCESS);   // = default
    EXPECT_EQ(call(bpf, AUDIT_ARCH_AARCH64, 63), SECCOMP_RET_ALLOW);         // arm64 read
    EXPECT_EQ(call(bpf, AUDIT_ARCH_I386, 3), SECCOMP_RET_KILL_THREAD);       // not listed
  }
#endif
}

TEST(SeccompCompileTest, CompilerVersionNamesLibseccomp) {
  ASSERT_OK_AND_ASSIGN(std::string version, seccompCompilerVersion());
  EXPECT_THAT(version, ::testing::MatchesRegex("libseccomp [0-9]+\\.[0-9]+\\.[0-9]+"));
}

TEST(SeccompCompileTest, RejectsWhatItCannotCompileWithClearErrors) {
  auto compile = [](const char* json) {
    auto section = parseOrderedJson(json);
    EXPECT_THAT(section, IsOk()) << json;
    return compileSeccompFilter(section.ok() ? *section : OrderedJson());
  };
  EXPECT_THAT(compile(R"({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/l.sock"})"),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("listener")));
  EXPECT_THAT(compile(R"({"architectures": []})"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("'defaultAction' is missing")));
  EXPECT_THAT(compile(R"({"defaultAction": "SCMP_ACT_NOPE"})"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("'SCMP_ACT_NOPE'")));
  EXPECT_THAT(compile(R"({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1})"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("defaultErrnoRet only applies")));
  EXPECT_THAT(compile(R"({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]})"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("'SCMP_ARCH_VAX'")));
  EXPECT_THAT(compile(R"({"defaultAction": "SCMP_ACT_ALLOW",
                          "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                                        "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]})"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("syscalls[0]")));
  EXPECT_THAT(compile(R"({"defaultAction": "SCMP_ACT_ALLOW",
                          "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                                        "args": [{"index": 0, "value": 1, "op": "EQ"}]}]})"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("unknown operator 'EQ'")));
  EXPECT_THAT(compile(R"({"defaultAction": "SCMP_ACT_ALLOW",
                          "syscalls": [{"names": "read", "action": "SCMP_ACT_ERRNO"}]})"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("syscalls[0] needs 'names'")));
  EXPECT_THAT(compile(R"([1, 2])"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("not a JSON object")));
}

}  // namespace
}  // namespace cairn::runtime
