#include "cairn/build/plan.h"

#include <algorithm>
#include <charconv>
#include <functional>

#include "cairn/common/strings.h"

namespace cairn::build {
namespace {

using dockerfile::EnvMap;
using dockerfile::ShellLexer;

Status lineError(int line, const std::string& message) {
  return invalidArgument("line " + std::to_string(line) + ": " + message);
}

std::optional<int> parseIndex(std::string_view s) {
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

}  // namespace

bool isPredefinedProxyArg(std::string_view name) {
  static const char* kNames[] = {"HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY"};
  std::string upper = toUpperAscii(name);
  if (name != upper && name != toLowerAscii(name)) return false;
  return std::any_of(std::begin(kNames), std::end(kNames),
                     [&](const char* n) { return upper == n; });
}

EnvMap automaticPlatformArgs(std::string_view target_platform, std::string_view build_platform) {
  EnvMap out;
  auto add = [&](const std::string& prefix, std::string_view platform) {
    std::vector<std::string> parts = splitString(platform, '/');
    out[prefix + "PLATFORM"] = std::string(platform);
    out[prefix + "OS"] = parts.size() > 0 ? parts[0] : "";
    out[prefix + "ARCH"] = parts.size() > 1 ? parts[1] : "";
    out[prefix + "VARIANT"] = parts.size() > 2 ? parts[2] : "";
  };
  add("TARGET", target_platform);
  add("BUILD", build_platform);
  return out;
}

Result<StageRef> resolveFromReference(const BuildPlan& plan, int current, std::string_view from,
                                      int line) {
  if (auto index = parseIndex(from)) {
    if (*index >= current) {
      return lineError(line, "invalid from flag value " + std::string(from) +
                                 ": refers to the current or a later stage");
    }
    return StageRef{BaseKind::kStage, *index, {}};
  }
  std::string lower = toLowerAscii(from);
  for (int i = 0; i < current; ++i) {
    if (!plan.stages[static_cast<std::size_t>(i)].name.empty() &&
        plan.stages[static_cast<std::size_t>(i)].name == lower) {
      return StageRef{BaseKind::kStage, i, {}};
    }
  }
  const auto& self = plan.stages[static_cast<std::size_t>(current)];
  if (!self.name.empty() && self.name == lower) {
    return lineError(line, "circular dependency detected on stage: " + self.name);
  }
  if (lower == "scratch") return StageRef{BaseKind::kScratch, -1, {}};
  return StageRef{BaseKind::kImage, -1, std::string(from)};
}

Result<BuildPlan> planBuild(dockerfile::Dockerfile df, const PlanOptions& options) {
  BuildPlan plan;
  plan.dockerfile = std::move(df);
  const auto& stages = plan.dockerfile.stages;
  if (stages.empty()) return invalidArgument("the Dockerfile has no FROM instruction");
  ShellLexer lexer(plan.dockerfile.escape);
  std::set<std::string> declared;

  // Global scope: automatic platform args, then meta ARGs in order (a default may use the
  // ones before it), build args overriding defaults.
  plan.global_args = automaticPlatformArgs(options.platform, options.build_platform);
  for (const auto& arg : plan.dockerfile.meta_args) {
    declared.insert(arg.key);
    if (auto it = options.build_args.find(arg.key); it != options.build_args.end()) {
      plan.global_args[arg.key] = it->second;
    } else if (arg.value) {
      CAIRN_ASSIGN_OR_RETURN(std::string v, lexer.processWord(*arg.value, plan.global_args));
      plan.global_args[arg.key] = v;
    } else {
      plan.global_args.erase(arg.key);
    }
  }

  std::map<std::string, int> names;
  for (std::size_t i = 0; i < stages.size(); ++i) {
    const auto& s = stages[i];
    PlannedStage p;
    p.index = static_cast<int>(i);
    p.name = toLowerAscii(s.name);
    if (!p.name.empty()) {
      if (names.count(p.name)) {
        return lineError(s.start_line, "duplicate stage name \"" + p.name + "\"");
      }
      names[p.name] = p.index;
    }
    auto base = lexer.processWord(s.base_name, plan.global_args);
    if (!base.ok()) return lineError(s.start_line, base.status().message());
    if (trimSpace(*base).empty()) {
      return lineError(s.start_line, "base name (" + s.base_name + ") should not be blank");
    }
    if (!s.platform.empty()) {
      CAIRN_ASSIGN_OR_RETURN(p.platform, lexer.processWord(s.platform, plan.global_args));
    }
    plan.stages.push_back(std::move(p));
    CAIRN_ASSIGN_OR_RETURN(StageRef ref,
                           resolveFromReference(plan, static_cast<int>(i), *base, s.start_line));
    plan.stages.back().base = ref;
  }

  // Edges from COPY --from and RUN --mount from, expanded with what the stage knows at that
  // point (its ARGs and ENVs, as BuildKit expands them).
  for (std::size_t i = 0; i < stages.size(); ++i) {
    PlannedStage& p = plan.stages[i];
    if (p.base.kind == BaseKind::kStage) p.stage_deps.insert(p.base.stage);
    EnvMap env;
    for (const auto& cmd : stages[i].commands) {
      auto addRef = [&](const std::string& raw) -> Status {
        if (raw.empty()) return okStatus();
        auto expanded = lexer.processWord(raw, env);
        if (!expanded.ok()) return lineError(cmd.start_line, expanded.status().message());
        CAIRN_ASSIGN_OR_RETURN(StageRef ref, resolveFromReference(plan, static_cast<int>(i),
                                                                  *expanded, cmd.start_line));
        if (ref.kind == BaseKind::kStage) p.stage_deps.insert(ref.stage);
        if (ref.kind == BaseKind::kImage) p.image_deps.insert(ref.image);
        return okStatus();
      };
      if (const auto* arg = std::get_if<dockerfile::ArgCommand>(&cmd.cmd)) {
        for (const auto& a : arg->args) {
          declared.insert(a.key);
          if (auto it = options.build_args.find(a.key); it != options.build_args.end()) {
            env[a.key] = it->second;
          } else if (a.value) {
            auto v = lexer.processWord(*a.value, env);
            if (v.ok()) env[a.key] = *v;
          } else if (auto g = plan.global_args.find(a.key); g != plan.global_args.end()) {
            env[a.key] = g->second;
          }
        }
      } else if (const auto* e = std::get_if<dockerfile::EnvCommand>(&cmd.cmd)) {
        for (const auto& kv : e->env) {
          auto v = lexer.processWord(kv.value, env);
          if (v.ok()) env[kv.key] = *v;
        }
      } else if (const auto* copy = std::get_if<dockerfile::CopyCommand>(&cmd.cmd)) {
        CAIRN_RETURN_IF_ERROR(addRef(copy->from));
      } else if (const auto* run = std::get_if<dockerfile::RunCommand>(&cmd.cmd)) {
        for (const auto& m : run->mounts)
          CAIRN_RETURN_IF_ERROR(addRef(m.from));
      }
    }
  }

  // The target and what it needs.
  if (options.target.empty()) {
    plan.target = static_cast<int>(stages.size()) - 1;
  } else {
    auto it = names.find(toLowerAscii(options.target));
    if (it == names.end()) {
      return invalidArgument("target stage \"" + options.target + "\" could not be found");
    }
    plan.target = it->second;
  }
  std::set<int> needed;
  std::function<void(int)> visit = [&](int s) {
    if (!needed.insert(s).second) return;
    for (int d : plan.stages[static_cast<std::size_t>(s)].stage_deps)
      visit(d);
  };
  visit(plan.target);
  // Dependencies always point to earlier stages, so index order is a topological order.
  plan.order.assign(needed.begin(), needed.end());

  for (const auto& [key, value] : options.build_args) {
    (void)value;
    if (!declared.count(key) && !isPredefinedProxyArg(key)) plan.unused_build_args.insert(key);
  }
  return plan;
}

}  // namespace cairn::build
