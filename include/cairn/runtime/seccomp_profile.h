// Seccomp for every container Cairn starts (RUN steps, `cairn run`, the entrypoint check).
//
// A SeccompProfile is a profile in Docker's format: the OCI runtime spec's `linux.seccomp`
// section plus Docker's extensions (`archMap`, and per rule `includes` / `excludes` conditions on
// capabilities, architectures and the kernel version). resolveSeccompProfile() turns it into the
// plain OCI section for one container, as Docker does when it creates one: rules whose conditions
// do not hold for the container's capability set, the native architecture or the running kernel
// are dropped. crun compiles that section with libseccomp at every start.
//
// defaultSeccompProfile() is Cairn's own table with the behaviour of Docker's default profile:
// ordinary syscalls allowed; syscalls that need a capability (mount, unshare, setns, clone with
// namespace flags, ptrace-family, bpf, perf_event_open, reboot, module loading, ...) allowed
// only when the container holds that capability; keyctl, add_key, request_key, kexec, swapon,
// io_uring, userfaultfd, ... never. See src/runtime/README.md for the errno choices.
//
//   ContainerSpec spec;                    // spec.seccomp defaults to Cairn's profile
//   CAIRN_ASSIGN_OR_RETURN(spec.seccomp, parseSeccompOption("unconfined"));  // or a PATH
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/json.h"
#include "cairn/common/status.h"

namespace cairn::runtime {

//! One argument comparison: (arg[index] op value), MASKED_EQ: (arg[index] & value) == value_two.
struct SeccompArg {
  std::uint32_t index = 0;  //!< 0..5
  std::uint64_t value = 0;
  std::uint64_t value_two = 0;
  std::string op;  //!< "SCMP_CMP_EQ", "SCMP_CMP_MASKED_EQ", ...
};

//! Docker's rule conditions. includes: every listed capability held, the native architecture
//! listed, the kernel at least min_kernel. excludes: the rule is dropped when any listed
//! capability is held, the native architecture is listed, or the kernel is at least min_kernel.
struct SeccompCondition {
  std::vector<std::string> caps;    //!< "CAP_SYS_ADMIN"
  std::vector<std::string> arches;  //!< Docker's names: "amd64", "arm64", "x32", "arm", ...
  std::string min_kernel;           //!< "4.8"; empty: no condition
  bool empty() const { return caps.empty() && arches.empty() && min_kernel.empty(); }
};

struct SeccompRule {
  std::vector<std::string> names;
  std::string action;                      //!< "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", ...
  std::optional<std::uint32_t> errno_ret;  //!< for SCMP_ACT_ERRNO / SCMP_ACT_TRACE
  std::vector<SeccompArg> args;            //!< all must hold
  SeccompCondition includes;
  SeccompCondition excludes;
};

struct SeccompArchMapEntry {
  std::string architecture;                    //!< "SCMP_ARCH_X86_64"
  std::vector<std::string> sub_architectures;  //!< {"SCMP_ARCH_X86", "SCMP_ARCH_X32"}
};

struct SeccompProfile {
  std::string default_action;
  std::optional<std::uint32_t> default_errno_ret;
  std::vector<std::string> architectures;  //!< either this or arch_map, never both
  std::vector<SeccompArchMapEntry> arch_map;
  std::vector<std::string> flags;  //!< "SECCOMP_FILTER_FLAG_LOG", ...
  std::string listener_path;       //!< for SCMP_ACT_NOTIFY
  std::string listener_metadata;
  std::vector<SeccompRule> syscalls;
};

//! What the profile is resolved against: the machine's architecture and kernel.
struct SeccompTarget {
  std::string arch;       //!< Docker's name of the native architecture: "amd64", "arm64"
  std::string scmp_arch;  //!< its libseccomp name: "SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"
  int kernel_major = 0;   //!< 0: unknown; min_kernel conditions then hold
  int kernel_minor = 0;
  //! This build's architecture and the running kernel (uname), computed once.
  static const SeccompTarget& native();
};

//! Cairn's default profile (Docker's format, with caps/arch conditions still in it).
const SeccompProfile& defaultSeccompProfile();

//! Resolves `profile` for a container with capability set `caps` (the bounding set, as Docker
//! uses) on `target`, into the OCI runtime spec's `linux.seccomp` object.
Result<OrderedJson> resolveSeccompProfile(const SeccompProfile& profile,
                                          const std::vector<std::string>& caps,
                                          const SeccompTarget& target = SeccompTarget::native());

//! resolveSeccompProfile(...)->dump(), byte for byte, written without building the JSON
//! (≈ 7× cheaper than resolving and dumping): the text a filter cache can key on.
Result<std::string> resolveSeccompProfileText(
    const SeccompProfile& profile, const std::vector<std::string>& caps,
    const SeccompTarget& target = SeccompTarget::native());

//! The default profile resolved for `caps`: the section a RUN step or sandbox gets. Memoized
//! per (caps, target): each call after the first is a copy.
OrderedJson defaultSeccompSection(const std::vector<std::string>& caps,
                                  const SeccompTarget& target = SeccompTarget::native());

//! Parses a profile in Docker's format or as a bare OCI `linux.seccomp` object (a subset of it).
//! Unknown actions, operators, architectures, flags and argument indexes are rejected with an
//! error naming the rule and the field; `source` (a file name) prefixes every message. Unknown
//! keys are ignored, as Docker does, unless they look like a misspelt known key ("syscall").
Result<SeccompProfile> parseSeccompProfile(std::string_view json_text, std::string_view source);
//! Reads and parses a profile file (`--security-opt seccomp=PATH`).
Result<SeccompProfile> loadSeccompProfile(const std::filesystem::path& path);

enum class SeccompMode {
  kDefault,     //!< Cairn's profile, resolved for the container's capabilities
  kUnconfined,  //!< no `linux.seccomp` section: no filter at all
  kCustom,      //!< a loaded profile, resolved like the default one
};

//! The seccomp choice of one container (ContainerSpec::seccomp). Cheap to copy: the custom
//! profile is shared.
struct SeccompOption {
  SeccompMode mode = SeccompMode::kDefault;
  std::shared_ptr<const SeccompProfile> custom;  //!< set exactly when mode == kCustom
};

//! `--security-opt seccomp=VALUE`: "unconfined", "default" (Cairn's profile), or a file path
//! loaded and checked now, so a bad file fails before anything is started.
Result<SeccompOption> parseSeccompOption(std::string_view value);
std::string_view seccompModeName(SeccompMode mode);

//! The `linux.seccomp` object for `option`, or nullopt when unconfined.
Result<std::optional<OrderedJson>> seccompSectionFor(
    const SeccompOption& option, const std::vector<std::string>& caps,
    const SeccompTarget& target = SeccompTarget::native());

//! A resolved `linux.seccomp` section as compact JSON text.
struct SeccompSectionText {
  //! Exactly seccompSectionFor(...)->dump(): parseOrderedJson(text) gives the section back.
  std::string text;
  //! Nothing in the section but what a compiled filter encodes (default action, architectures,
  //! rules): no flags, no notify listener. crun given the compiled filter
  //! (run.oci.seccomp_bpf_data) then needs no `linux.seccomp` in config.json at all.
  bool rules_only = true;
};

//! seccompSectionFor() as text, or nullopt when unconfined: what a cache of compiled filters
//! keys on. A one-shot `cairn run` pays ≈ 0.12 ms for it instead of ≈ 0.3 ms for the JSON
//! plus its dump(); the default profile's text is memoized per (caps, target). Pair it with
//! OciConfigInputs::with_seccomp = false and parse the text only when the runtime needs the
//! section (no cached filter, or !rules_only):
//!
//!   inputs.with_seccomp = false;
//!   CAIRN_ASSIGN_OR_RETURN(OrderedJson config, makeOciConfig(spec, inputs));
//!   CAIRN_ASSIGN_OR_RETURN(auto s, seccompSectionTextFor(spec.seccomp, caps));
//!   if (s && (!filter || !s->rules_only)) {
//!     CAIRN_ASSIGN_OR_RETURN(config["linux"]["seccomp"], parseOrderedJson(s->text));
//!   }
Result<std::optional<SeccompSectionText>> seccompSectionTextFor(
    const SeccompOption& option, const std::vector<std::string>& caps,
    const SeccompTarget& target = SeccompTarget::native());

//! How compileSeccompFilter lays out the syscall-number checks.
enum class SeccompFilterLayout {
  //! One check after the other: byte for byte the filter crun 1.8 compiles from the section.
  kLinear,
  //! A binary search over syscall numbers (libseccomp's SCMP_FLTATR_CTL_OPTIMIZE = 2): the
  //! same verdict for every call, and the kernel installs it ≈ 2.4× faster (0.24 vs 0.57 ms
  //! for the default profile here: at attach it runs the filter once per syscall number and
  //! architecture to fill its cache of always-allowed calls); `crun run` ≈ 0.26 ms less CPU.
  kBinaryTree,
};

//! Compiles a resolved `linux.seccomp` section (seccompSectionFor, or parseOrderedJson of
//! seccompSectionTextFor's text) into the classic-BPF program crun takes through its
//! `run.oci.seccomp_bpf_data` annotation, with libseccomp (loaded on first use), mapping the
//! section as crun does: errno EPERM when none is given, rules with the default action skipped,
//! names libseccomp does not know left to the default action, two conditions on one argument
//! ORed. `flags` are not part of the program (crun applies them when loading it, so the section
//! must stay in config.json when it has any); a notify listener cannot be compiled here
//! (FailedPrecondition). A malformed section is InvalidArgument naming the rule.
Result<std::string> compileSeccompFilter(
    const OrderedJson& section, SeccompFilterLayout layout = SeccompFilterLayout::kBinaryTree);

//! The compiler compileSeccompFilter uses, e.g. "libseccomp 2.5.4": part of a cache key for
//! its output (another version may know more syscall names, so compile a profile differently).
Result<std::string> seccompCompilerVersion();

}  // namespace cairn::runtime
