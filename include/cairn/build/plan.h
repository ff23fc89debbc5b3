// Planning a build: which stages the target needs, in which order, from which bases.
//
// The first stage of the build engine after parsing (STYLE.md §5): it turns the typed
// Dockerfile into a DAG of stages. Global ARGs (before the first FROM) are resolved with the
// build args and BuildKit's automatic platform args, FROM names are expanded with them, and
// every reference to another stage — `FROM <stage>`, `COPY --from=<name|index>`,
// `RUN --mount=from=…` — becomes an edge. Stages the target does not need are left out, as
// BuildKit does. References that are not stages are images.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/dockerfile/instructions.h"
#include "cairn/dockerfile/shell_lexer.h"

namespace cairn::build {

enum class BaseKind { kScratch, kStage, kImage };

//! What a stage starts from, or what a --from names.
struct StageRef {
  BaseKind kind = BaseKind::kScratch;
  int stage = -1;     //!< kStage: index into BuildPlan::stages
  std::string image;  //!< kImage: the reference as expanded (not yet normalised)

  friend bool operator==(const StageRef&, const StageRef&) = default;
};

struct PlannedStage {
  int index = 0;
  std::string name;  //!< lower-cased `AS` name, or "" when unnamed
  StageRef base;
  std::string platform;              //!< expanded --platform, or ""
  std::set<int> stage_deps;          //!< other stages this one needs (base, --from, mount from)
  std::set<std::string> image_deps;  //!< images named by --from / mount from
};

struct PlanOptions {
  std::map<std::string, std::string> build_args;
  std::string target;  //!< stage name; empty = the last stage
  std::string platform = "linux/amd64";
  std::string build_platform = "linux/amd64";
};

struct BuildPlan {
  dockerfile::Dockerfile dockerfile;
  std::vector<PlannedStage> stages;  //!< every stage of the Dockerfile, in order
  std::vector<int> order;            //!< the stages the target needs, dependencies first
  int target = 0;
  //! The global scope: declared meta ARGs (after build args) and the automatic platform args.
  dockerfile::EnvMap global_args;
  //! --build-arg keys no needed stage declares (BuildKit warns about them).
  std::set<std::string> unused_build_args;
};

//! ARGs every stage may use without declaring them (BuildKit's defaults): HTTP_PROXY and
//! friends, upper and lower case.
bool isPredefinedProxyArg(std::string_view name);

//! The automatic platform args (TARGETPLATFORM, TARGETOS, TARGETARCH, TARGETVARIANT and the
//! BUILD* equivalents) for "os/arch[/variant]" platforms.
dockerfile::EnvMap automaticPlatformArgs(std::string_view target_platform,
                                         std::string_view build_platform);

//! Plans a build. Errors name the Dockerfile line: an unknown --target, a blank base name, a
//! --from that refers to the stage itself or a later stage.
Result<BuildPlan> planBuild(dockerfile::Dockerfile dockerfile, const PlanOptions& options);

//! Resolves a `--from` value used in stage `current`: a stage index ("0"), an earlier stage's
//! name, or else an image reference.
Result<StageRef> resolveFromReference(const BuildPlan& plan, int current, std::string_view from,
                                      int line);

}  // namespace cairn::build
