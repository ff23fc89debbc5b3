#include "cairn/runtime/container_spec.h"

#include <sys/resource.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "cairn/common/fs.h"
#include "cairn/common/strings.h"

namespace cairn::runtime {

namespace {

constexpr const char* kDefaultPath =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Docker's default capability set (moby oci/caps/defaults.go).
const std::vector<std::string> kDefaultCapabilities = {
    "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
    "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
    "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
    "CAP_KILL",    "CAP_AUDIT_WRITE",
};

// Docker's masked and read-only /proc and /sys paths (moby oci/defaults.go).
const std::vector<std::string> kMaskedPaths = {
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
};
const std::vector<std::string> kReadonlyPaths = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

bool isAbsoluteClean(const std::string& p) {
  return !p.empty() && p[0] == '/' && p.find('\0') == std::string::npos;
}

OrderedJson mountJson(const std::string& destination, const std::string& type,
                      const std::string& source, const std::vector<std::string>& options) {
  OrderedJson m;
  m["destination"] = destination;
  m["type"] = type;
  m["source"] = source;
  m["options"] = options;
  return m;
}

}  // namespace

const std::vector<std::string>& defaultCapabilities() {
  return kDefaultCapabilities;
}

std::string_view networkModeName(NetworkMode mode) {
  switch (mode) {
    case NetworkMode::kNone:
      return "none";
    case NetworkMode::kHost:
      return "host";
    case NetworkMode::kDefault:
      break;
  }
  return "default";
}

Result<NetworkMode> parseNetworkMode(std::string_view text) {
  if (text == "none") return NetworkMode::kNone;
  if (text == "host") return NetworkMode::kHost;
  if (text == "default" || text == "bridge" || text == "slirp" || text.empty())
    return NetworkMode::kDefault;
  return invalidArgument("unknown network mode '" + std::string(text) +
                         "' (expected none, host or default)");
}

Status validateContainerSpec(const ContainerSpec& spec) {
  const RootfsSpec& r = spec.rootfs;
  if (r.dir.empty() == r.lower_dirs.empty())
    return invalidArgument("rootfs: give either a prepared dir or overlay lower dirs");
  if (!r.upper_dir.empty() && r.work_dir.empty())
    return invalidArgument("rootfs: an upper dir needs a work dir on the same filesystem");
  if (!r.dir.empty() && !r.upper_dir.empty())
    return invalidArgument("rootfs: an upper dir needs lower dirs, not a prepared dir");
  if (spec.process.args.empty()) return invalidArgument("process: no command given");
  if (spec.process.args[0].empty()) return invalidArgument("process: empty program name");
  if (!isAbsoluteClean(spec.process.cwd))
    return invalidArgument("process: working directory '" + spec.process.cwd +
                           "' must be an absolute path");
  for (const std::string& e : spec.process.env)
    if (e.empty() || e.front() == '=' || e.find('=') == std::string::npos)
      return invalidArgument("process: environment entry '" + e + "' is not K=V");
  if (spec.hostname.empty() || spec.hostname.size() > 64 ||
      spec.hostname.find_first_of("/ \n\t") != std::string::npos)
    return invalidArgument("hostname '" + spec.hostname + "' is not a valid host name");
  if (spec.limits.cpus < 0 || !std::isfinite(spec.limits.cpus))
    return invalidArgument("limits: cpu count must be >= 0");
  if (spec.limits.memory_bytes < 0) return invalidArgument("limits: memory must be >= 0");
  if (spec.limits.memory_bytes > 0 && spec.limits.memory_bytes < 6 * 1024 * 1024)
    return invalidArgument("limits: memory limit below 6 MiB cannot start a container");
  if (spec.limits.pids < 0) return invalidArgument("limits: pids must be >= 0");
  if (spec.timeout.count() < 0) return invalidArgument("timeout must be >= 0");
  if ((spec.seccomp.mode == SeccompMode::kCustom) != (spec.seccomp.custom != nullptr))
    return invalidArgument("seccomp: a custom profile is given exactly with the custom mode");
  for (const MountSpec& m : spec.mounts) {
    if (!isAbsoluteClean(m.destination))
      return invalidArgument("mount destination '" + m.destination + "' must be absolute");
    if (m.type == "bind" && !isAbsoluteClean(m.source))
      return invalidArgument("bind mount source '" + m.source + "' must be absolute");
  }
  return okStatus();
}

std::string makeHostsFile(const std::string& hostname) {
  return "127.0.0.1\tlocalhost\n"
         "::1\tlocalhost ip6-localhost ip6-loopback\n"
         "fe00::0\tip6-localnet\n"
         "ff00::0\tip6-mcastprefix\n"
         "ff02::1\tip6-allnodes\n"
         "ff02::2\tip6-allrouters\n"
         "127.0.1.1\t" +
         hostname + "\n";
}

std::string makeResolvConf(NetworkMode mode, std::string_view host_resolv_conf) {
  // slirp4netns' built-in DNS forwarder (10.0.2.3 with --configure).
  if (mode == NetworkMode::kDefault) return "nameserver 10.0.2.3\n";
  std::string out;
  bool any_nameserver = false;
  for (const std::string& raw : splitString(host_resolv_conf, '\n')) {
    std::string line(trimSpace(raw));
    if (line.rfind("nameserver", 0) == 0) {
      std::string addr(trimSpace(std::string_view(line).substr(10)));
      bool loopback = addr.rfind("127.", 0) == 0 || addr == "::1";
      if (loopback && mode != NetworkMode::kHost) continue;
      any_nameserver = true;
    }
    if (!line.empty()) out += line + "\n";
  }
  if (!any_nameserver && mode == NetworkMode::kNone) out += "nameserver 10.0.2.3\n";
  return out;
}

void fillHostRlimits(OciConfigInputs& inputs) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
    inputs.nofile_hard = std::min<std::uint64_t>(rl.rlim_max, 1048576);
  if (getrlimit(RLIMIT_NPROC, &rl) == 0)
    inputs.nproc_hard = rl.rlim_max == RLIM_INFINITY ? 0 : rl.rlim_max;
}

Result<OrderedJson> makeOciConfig(const ContainerSpec& spec, const OciConfigInputs& inputs) {
  CAIRN_RETURN_IF_ERROR(validateContainerSpec(spec));
  if (!isAbsoluteClean(inputs.rootfs_path))
    return invalidArgument("rootfs path '" + inputs.rootfs_path + "' must be absolute");

  OrderedJson c;
  c["ociVersion"] = "1.0.2";

  OrderedJson process;
  process["terminal"] = spec.process.terminal;
  OrderedJson user;
  user["uid"] = spec.process.uid;
  user["gid"] = spec.process.gid;
  if (!spec.process.additional_gids.empty()) user["additionalGids"] = spec.process.additional_gids;
  process["user"] = user;
  process["args"] = spec.process.args;
  std::vector<std::string> env = spec.process.env;
  bool has_path = std::any_of(env.begin(), env.end(),
                              [](const std::string& e) { return e.rfind("PATH=", 0) == 0; });
  if (!has_path) env.insert(env.begin(), kDefaultPath);
  bool has_hostname = std::any_of(
      env.begin(), env.end(), [](const std::string& e) { return e.rfind("HOSTNAME=", 0) == 0; });
  if (!has_hostname) env.push_back("HOSTNAME=" + spec.hostname);
  if (spec.process.terminal && std::none_of(env.begin(), env.end(), [](const std::string& e) {
        return e.rfind("TERM=", 0) == 0;
      }))
    env.push_back("TERM=xterm");
  process["env"] = env;
  process["cwd"] = spec.process.cwd;
  OrderedJson caps;
  caps["bounding"] = kDefaultCapabilities;
  caps["effective"] = kDefaultCapabilities;
  caps["permitted"] = kDefaultCapabilities;
  process["capabilities"] = caps;
  OrderedJson rlimits = OrderedJson::array();
  // Docker's daemon default is 1048576; never above what this process may grant.
  rlimits.push_back(
      {{"type", "RLIMIT_NOFILE"}, {"hard", inputs.nofile_hard}, {"soft", inputs.nofile_hard}});
  if (inputs.nproc_hard > 0)
    rlimits.push_back(
        {{"type", "RLIMIT_NPROC"}, {"hard", inputs.nproc_hard}, {"soft", inputs.nproc_hard}});
  process["rlimits"] = rlimits;
  process["noNewPrivileges"] = false;  // setuid tools (su, ping) must work, as under Docker
  c["process"] = process;

  c["root"] = {{"path", inputs.rootfs_path}, {"readonly", spec.rootfs.readonly}};
  c["hostname"] = spec.hostname;

  OrderedJson mounts = OrderedJson::array();
  mounts.push_back(mountJson("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}));
  mounts.push_back(
      mountJson("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}));
  mounts.push_back(
      mountJson("/dev/pts", "devpts", "devpts",
                {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}));
  mounts.push_back(mountJson("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}));
  mounts.push_back(mountJson("/sys/fs/cgroup", "cgroup", "cgroup",
                             {"nosuid", "noexec", "nodev", "relatime", "ro"}));
  mounts.push_back(mountJson("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}));
  mounts.push_back(mountJson("/dev/shm", "tmpfs", "shm",
                             {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}));
  // Generated per run and bind-mounted: never written into the rootfs or the upper dir.
  if (!inputs.hosts_file.empty())
    mounts.push_back(mountJson("/etc/hosts", "bind", inputs.hosts_file, {"rbind", "rprivate"}));
  if (!inputs.resolv_conf_file.empty())
    mounts.push_back(
        mountJson("/etc/resolv.conf", "bind", inputs.resolv_conf_file, {"rbind", "rprivate"}));
  if (!inputs.hostname_file.empty())
    mounts.push_back(
        mountJson("/etc/hostname", "bind", inputs.hostname_file, {"rbind", "rprivate"}));
  for (const MountSpec& m : spec.mounts) {
    std::vector<std::string> options = m.options;
    if (m.type == "bind" && std::find(options.begin(), options.end(), "rbind") == options.end() &&
        std::find(options.begin(), options.end(), "bind") == options.end())
      options.insert(options.begin(), "rbind");
    mounts.push_back(mountJson(m.destination, m.type, m.source, options));
  }
  c["mounts"] = mounts;

  OrderedJson linux_section;
  OrderedJson resources;
  resources["devices"] = OrderedJson::array({{{"allow", false}, {"access", "rwm"}}});
  if (spec.limits.memory_bytes > 0) {
    resources["memory"] = {{"limit", spec.limits.memory_bytes}, {"swap", spec.limits.memory_bytes}};
  }
  if (spec.limits.cpus > 0) {
    constexpr std::int64_t kPeriod = 100000;
    auto quota = static_cast<std::int64_t>(std::llround(spec.limits.cpus * kPeriod));
    resources["cpu"] = {{"quota", std::max<std::int64_t>(quota, 1000)}, {"period", kPeriod}};
  }
  if (spec.limits.pids > 0) resources["pids"] = {{"limit", spec.limits.pids}};
  linux_section["resources"] = resources;
  if (!inputs.cgroups_path.empty()) linux_section["cgroupsPath"] = inputs.cgroups_path;
  OrderedJson namespaces = OrderedJson::array();
  namespaces.push_back({{"type", "pid"}});
  namespaces.push_back({{"type", "ipc"}});
  namespaces.push_back({{"type", "uts"}});
  namespaces.push_back({{"type", "mount"}});
  if (spec.network != NetworkMode::kHost) {
    OrderedJson net = {{"type", "network"}};
    if (spec.network == NetworkMode::kDefault && !inputs.netns_path.empty())
      net["path"] = inputs.netns_path;
    namespaces.push_back(net);
  }
  linux_section["namespaces"] = namespaces;
  linux_section["maskedPaths"] = kMaskedPaths;
  linux_section["readonlyPaths"] = kReadonlyPaths;
  // Resolved against the bounding set, as Docker does: the caps-gated syscalls follow it.
  if (inputs.with_seccomp) {
    CAIRN_ASSIGN_OR_RETURN(std::optional<OrderedJson> seccomp,
                           seccompSectionFor(spec.seccomp, kDefaultCapabilities));
    if (seccomp) linux_section["seccomp"] = std::move(*seccomp);
  }
  c["linux"] = linux_section;
  return c;
}

namespace {

Result<std::uint32_t> parseId(std::string_view s) {
  std::uint32_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty())
    return invalidArgument("not a number");
  return v;
}

struct DbEntry {
  std::vector<std::string> fields;
};

std::vector<DbEntry> readColonDb(const std::filesystem::path& path) {
  std::vector<DbEntry> entries;
  auto text = readFile(path);
  if (!text.ok()) return entries;
  for (const std::string& line : splitString(*text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    entries.push_back({splitString(line, ':')});
  }
  return entries;
}

}  // namespace

Result<ResolvedUser> resolveUser(const std::filesystem::path& rootfs, std::string_view user) {
  if (user.empty()) return ResolvedUser{};
  std::string_view user_part = user;
  std::string_view group_part;
  bool has_group = false;
  if (auto colon = user.find(':'); colon != std::string_view::npos) {
    user_part = user.substr(0, colon);
    group_part = user.substr(colon + 1);
    has_group = true;
    if (group_part.empty()) return invalidArgument("user '" + std::string(user) + "': empty group");
  }
  if (user_part.empty()) return invalidArgument("user '" + std::string(user) + "': empty user");
  std::vector<DbEntry> passwd = readColonDb(rootfs / "etc/passwd");
  std::vector<DbEntry> groups = readColonDb(rootfs / "etc/group");

  ResolvedUser r;
  std::string user_name;
  auto numeric_uid = parseId(user_part);
  const DbEntry* pw = nullptr;
  for (const DbEntry& e : passwd) {
    if (e.fields.size() < 7) continue;
    if (numeric_uid.ok() ? e.fields[2] == std::string(user_part) : e.fields[0] == user_part) {
      pw = &e;
      break;
    }
  }
  if (numeric_uid.ok()) {
    r.uid = *numeric_uid;
  } else if (pw != nullptr) {
    CAIRN_ASSIGN_OR_RETURN(r.uid, parseId(pw->fields[2]));
  } else {
    return notFound("user '" + std::string(user_part) + "' not found in the image's /etc/passwd");
  }
  if (pw != nullptr) {
    user_name = pw->fields[0];
    r.home = pw->fields[5];
    auto g = parseId(pw->fields[3]);
    if (g.ok()) r.gid = *g;
  }
  if (has_group) {
    auto numeric_gid = parseId(group_part);
    if (numeric_gid.ok()) {
      r.gid = *numeric_gid;
    } else {
      bool found = false;
      for (const DbEntry& e : groups) {
        if (e.fields.size() >= 3 && e.fields[0] == group_part) {
          CAIRN_ASSIGN_OR_RETURN(r.gid, parseId(e.fields[2]));
          found = true;
          break;
        }
      }
      if (!found)
        return notFound("group '" + std::string(group_part) +
                        "' not found in the image's /etc/group");
    }
  } else if (!user_name.empty()) {
    // Supplementary groups, as Docker adds them when no group is given.
    for (const DbEntry& e : groups) {
      if (e.fields.size() < 4) continue;
      for (const std::string& member : splitString(e.fields[3], ',')) {
        if (member != user_name) continue;
        auto g = parseId(e.fields[2]);
        if (g.ok() && *g != r.gid) r.additional_gids.push_back(*g);
      }
    }
  }
  return r;
}

}  // namespace cairn::runtime
