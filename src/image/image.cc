#include "cairn/image/image.h"

#include <sys/stat.h>

#include <toml++/toml.h>
#include <algorithm>
#include <array>
#include <map>

#include "cairn/common/fs.h"
#include "cairn/dockerfile/dockerignore.h"
#include "cairn/image/quote.h"
#include "copy_sources.h"
#include "js_compat.h"

namespace cairn {

void throwImageError(const Status& status) {
  switch (status.code()) {
    case StatusCode::kNotFound:
      throw DaytonaNotFoundError(status.message());
    case StatusCode::kInvalidArgument:
      throw DaytonaInvalidArgumentError(status.message());
    default:
      throw DaytonaError(status.message());
  }
}

namespace {

constexpr std::array<std::string_view, 5> kPythonSeries = {"3.9", "3.10", "3.11", "3.12", "3.13"};
constexpr std::array<std::string_view, 5> kPythonMicro = {"3.9.22", "3.10.17", "3.11.12", "3.12.10",
                                                          "3.13.3"};

enum class Kind { kMissing, kFile, kDirectory, kOther };

// fs.existsSync + fs.statSync: both follow symlinks, so a dangling link does not exist.
Kind statKind(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Kind::kMissing;
  if (S_ISREG(st.st_mode)) return Kind::kFile;
  if (S_ISDIR(st.st_mode)) return Kind::kDirectory;
  return Kind::kOther;
}

std::string formatPipInstallArgs(const PipInstallOptions& o) {
  std::string extra;
  for (const std::string& link : o.findLinks)
    extra += " --find-links " + shellQuote(link);
  if (!o.indexUrl.empty()) extra += " --index-url " + shellQuote(o.indexUrl);
  for (const std::string& url : o.extraIndexUrls)
    extra += " --extra-index-url " + shellQuote(url);
  if (o.pre) extra += " --pre";
  if (!o.extraOptions.empty()) extra += " " + image::js::trim(o.extraOptions);
  return extra;
}

void flattenStrings(const OrderedJson& value, std::vector<std::string>* out) {
  if (value.is_string()) {
    out->push_back(value.get<std::string>());
  } else if (value.is_array()) {
    for (const OrderedJson& item : value)
      flattenStrings(item, out);
  } else {
    throw DaytonaInvalidArgumentError("pipInstall: packages must only contain strings");
  }
}

// A canonical array index ("0", "17", not "01"), which JavaScript objects order first.
std::optional<std::uint64_t> arrayIndex(std::string_view key) {
  if (key.empty() || key.size() > 10 || (key.size() > 1 && key[0] == '0')) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : key) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (v >= 4294967295ULL) return std::nullopt;
  return v;
}

// Object.entries order of an object literal with these keys.
std::vector<std::pair<std::string, std::string>> jsObjectOrder(
    const std::vector<std::pair<std::string, std::string>>& vars) {
  std::map<std::uint64_t, std::string> indexed;  // index → value
  std::vector<std::pair<std::string, std::string>> named;
  for (const auto& var : vars) {
    const std::string& key = var.first;
    const std::string& value = var.second;
    if (auto idx = arrayIndex(key)) {
      indexed[*idx] = value;
      continue;
    }
    auto it =
        std::find_if(named.begin(), named.end(), [&](const auto& p) { return p.first == key; });
    if (it != named.end()) {
      it->second = value;
    } else {
      named.emplace_back(key, value);
    }
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [idx, value] : indexed)
    out.emplace_back(std::to_string(idx), value);
  out.insert(out.end(), named.begin(), named.end());
  return out;
}

std::string jsonArrayLine(std::string_view keyword, const std::vector<std::string>& args) {
  std::string line(keyword);
  line += " [";
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (i > 0) line += ", ";
    line += "\"" + args[i] + "\"";
  }
  return line + "]\n";
}

std::vector<std::string> stringList(const OrderedJson& value, const char* message) {
  if (!value.is_array()) throw DaytonaInvalidArgumentError(message);
  std::vector<std::string> out;
  for (const OrderedJson& item : value) {
    if (!item.is_string()) throw DaytonaInvalidArgumentError(message);
    out.push_back(item.get<std::string>());
  }
  return out;
}

std::vector<ContextEntry> discoverOrThrow(std::string_view content, std::string_view prefix,
                                          bool strict, std::string_view context_root) {
  std::shared_ptr<const dockerfile::DockerIgnore> ignore;
  if (!context_root.empty()) {
    auto loaded = image::loadDockerIgnore(context_root);
    if (!loaded.ok()) throw DaytonaInvalidArgumentError(loaded.status().message());
    ignore = *loaded;
  }
  auto entries = image::discoverContextEntries(content, prefix, strict, ignore);
  if (!entries.ok()) throwImageError(entries.status());
  return std::move(entries).value();
}

}  // namespace

Image Image::base(std::string_view image) {
  Image img;
  img.dockerfile_ = "FROM " + std::string(image) + "\n";
  return img;
}

Image Image::debianSlim(std::optional<std::string> python_version) {
  std::string series = python_version.value_or("");
  if (series.empty()) series = std::string(kPythonSeries.back());
  std::string micro;
  for (std::size_t i = 0; i < kPythonSeries.size(); ++i) {
    if (kPythonSeries[i] == series) micro = std::string(kPythonMicro[i]);
  }
  if (micro.empty()) {
    throw DaytonaInvalidArgumentError("Unsupported Python version: " + series +
                                      ". Daytona supports the following series: 3.9, 3.10, "
                                      "3.11, 3.12, 3.13");
  }
  Image img;
  img.dockerfile_ = "FROM python:" + micro +
                    "-slim-bookworm\n"
                    "RUN apt-get update\n"
                    "RUN apt-get install -y gcc gfortran build-essential\n"
                    "RUN pip install --upgrade pip\n"
                    "RUN echo 'debconf debconf/frontend select Noninteractive' | "
                    "debconf-set-selections\n";
  return img;
}

Image Image::fromDockerfile(std::string_view path, const ContextOptions& options) {
  std::string expanded = image::js::pathe::resolve(image::js::expandTilde(path));
  switch (statKind(expanded)) {
    case Kind::kMissing:
      throw DaytonaNotFoundError("Dockerfile " + std::string(path) + " does not exist");
    case Kind::kFile:
      break;
    default:
      throw DaytonaInvalidArgumentError("Dockerfile path " + std::string(path) +
                                        " exists but is not a file");
  }
  Result<std::string> content = readFile(expanded);
  if (!content.ok()) throw DaytonaError(content.status().message());
  Image img;
  img.dockerfile_ = *content;
  std::string dir = image::js::pathe::dirname(expanded);
  std::string prefix = dir + "/";
  img.context_list_ = discoverOrThrow(*content, prefix, options.strictContext, dir);
  return img;
}

Image& Image::pipInstall(const std::vector<std::string>& packages,
                         const PipInstallOptions& options) {
  if (packages.empty()) return *this;
  std::vector<std::string> sorted = packages;
  std::stable_sort(sorted.begin(), sorted.end(), [](const std::string& a, const std::string& b) {
    return image::js::utf16Less(a, b);
  });
  std::string extra = formatPipInstallArgs(options);
  dockerfile_ += "RUN python -m pip install " + shellQuote(sorted) + extra + "\n";
  return *this;
}

Image& Image::pipInstall(const char* package, const PipInstallOptions& options) {
  return pipInstall(std::vector<std::string>{package}, options);
}

Image& Image::pipInstall(const JsValue& packages, const PipInstallOptions& options) {
  std::vector<std::string> flat;
  flattenStrings(packages.value, &flat);
  return pipInstall(flat, options);
}

Image& Image::pipInstallFromRequirements(std::string_view requirements_txt,
                                         const PipInstallOptions& options) {
  std::string expanded = image::js::expandTilde(requirements_txt);
  switch (statKind(expanded)) {
    case Kind::kMissing:
      throw DaytonaNotFoundError("Requirements file " + std::string(requirements_txt) +
                                 " does not exist");
    case Kind::kFile:
      break;
    default:
      throw DaytonaInvalidArgumentError("Requirements path " + std::string(requirements_txt) +
                                        " exists but is not a file");
  }
  std::string extra = formatPipInstallArgs(options);
  context_list_.push_back({expanded, expanded, nullptr});
  dockerfile_ += "COPY " + expanded + " /.requirements.txt\n";
  dockerfile_ += "RUN python -m pip install -r /.requirements.txt" + extra + "\n";
  return *this;
}

Image& Image::pipInstallFromPyproject(std::string_view pyproject_toml,
                                      const PyprojectOptions& options) {
  const std::string p(pyproject_toml);
  std::string expanded = image::js::expandTilde(pyproject_toml);
  switch (statKind(expanded)) {
    case Kind::kMissing:
      throw DaytonaNotFoundError("pyproject.toml file " + p + " does not exist");
    case Kind::kFile:
      break;
    default:
      throw DaytonaInvalidArgumentError("pyproject.toml path " + p + " exists but is not a file");
  }
  Result<std::string> text = readFile(expanded);
  if (!text.ok()) throw DaytonaError(text.status().message());
  toml::table doc;
  try {
    doc = toml::parse(*text, expanded);
  } catch (const toml::parse_error& e) {
    // The SDK's message comes from @iarna/toml; ours names toml++'s reason and position.
    std::ostringstream where;
    where << e.description() << " (line " << e.source().begin.line << ", column "
          << e.source().begin.column << ")";
    throw DaytonaInvalidArgumentError("Invalid pyproject.toml file " + p + ": " + where.str());
  }
  const toml::array* deps = doc["project"]["dependencies"].as_array();
  if (deps == nullptr) {
    throw DaytonaInvalidArgumentError(
        "No [project.dependencies] section in pyproject.toml file. See "
        "https://packaging.python.org/en/latest/guides/writing-pyproject-toml for further file "
        "format guidelines.");
  }
  auto toJson = [](const toml::array& arr) {
    OrderedJson out = OrderedJson::array();
    for (const toml::node& n : arr) {
      if (auto s = n.value<std::string>(); s && n.is_string()) {
        out.push_back(*s);
      } else {
        out.push_back(nullptr);  // a non-string dependency: pipInstall rejects it like the SDK
      }
    }
    return out;
  };
  OrderedJson all = toJson(*deps);
  const toml::node* optional = doc["project"]["optional-dependencies"].node();
  if (options.optionalDependencies && optional != nullptr) {
    const toml::table* groups = optional->as_table();
    if (groups == nullptr) {
      throw DaytonaInvalidArgumentError(
          "optional-dependencies must be a mapping in pyproject.toml");
    }
    for (const std::string& group : *options.optionalDependencies) {
      if (const toml::array* arr = (*groups)[group].as_array()) {
        for (OrderedJson& d : toJson(*arr))
          all.push_back(std::move(d));
      }
    }
  }
  return pipInstall(JsValue(std::move(all)), options);
}

Image& Image::addLocalFile(std::string_view local_path, std::string_view remote_path) {
  std::string remote(remote_path);
  if (!remote.empty() && remote.back() == '/') remote += image::js::pathe::basename(local_path);
  std::string expanded = image::js::expandTilde(local_path);
  switch (statKind(expanded)) {
    case Kind::kMissing:
      throw DaytonaNotFoundError("Local file " + std::string(local_path) + " does not exist");
    case Kind::kFile:
      break;
    default:
      throw DaytonaInvalidArgumentError("Local path " + std::string(local_path) +
                                        " exists but is not a file");
  }
  context_list_.push_back({expanded, expanded, nullptr});
  dockerfile_ += "COPY " + expanded + " " + remote + "\n";
  return *this;
}

Image& Image::addLocalDir(std::string_view local_path, std::string_view remote_path) {
  std::string expanded = image::js::expandTilde(local_path);
  switch (statKind(expanded)) {
    case Kind::kMissing:
      throw DaytonaNotFoundError("Local directory " + std::string(local_path) + " does not exist");
    case Kind::kDirectory:
      break;
    default:
      throw DaytonaInvalidArgumentError("Local path " + std::string(local_path) +
                                        " exists but is not a directory");
  }
  context_list_.push_back({expanded, expanded, nullptr});
  dockerfile_ += "COPY " + expanded + " " + std::string(remote_path) + "\n";
  return *this;
}

Image& Image::runCommands(const std::vector<RunCommand>& commands) {
  for (const RunCommand& command : commands) {
    if (const auto* argv = std::get_if<std::vector<std::string>>(&command.value())) {
      std::string line = "RUN";
      for (std::size_t i = 0; i < argv->size(); ++i) {
        line += i == 0 ? " \"" : " \"";
        for (char c : (*argv)[i]) {
          if (c == '"') {
            line += "\\\\\\\"";
          } else if (c == '\'') {
            line += "\\'";
          } else {
            line += c;
          }
        }
        line += "\"";
      }
      // `RUN ${[].join(' ')}` leaves "RUN " for an empty list.
      if (argv->empty()) line += " ";
      dockerfile_ += line + "\n";
    } else {
      dockerfile_ += "RUN " + std::get<std::string>(command.value()) + "\n";
    }
  }
  return *this;
}

Image& Image::env(const std::vector<std::pair<std::string, std::string>>& vars) {
  for (const auto& [key, value] : jsObjectOrder(vars)) {
    dockerfile_ += "ENV " + key + "=" + shellQuote(value) + "\n";
  }
  return *this;
}

Image& Image::env(const JsValue& vars) {
  if (!vars.value.is_object()) {
    throw DaytonaInvalidArgumentError("Image ENV variables must be strings. Invalid keys: ");
  }
  std::vector<std::pair<std::string, std::string>> pairs;
  std::vector<std::pair<std::string, std::string>> order;
  for (const auto& [key, value] : vars.value.items())
    order.emplace_back(key, "");
  std::string invalid;
  for (const auto& [key, unused] : jsObjectOrder(order)) {
    const OrderedJson& value = vars.value.at(key);
    if (!value.is_string()) {
      invalid += (invalid.empty() ? "" : ",") + key;
    } else {
      pairs.emplace_back(key, value.get<std::string>());
    }
  }
  if (!invalid.empty()) {
    throw DaytonaInvalidArgumentError("Image ENV variables must be strings. Invalid keys: " +
                                      invalid);
  }
  return env(pairs);
}

Image& Image::workdir(std::string_view dir_path) {
  dockerfile_ += "WORKDIR " + shellQuote(dir_path) + "\n";
  return *this;
}

Image& Image::entrypoint(const std::vector<std::string>& commands) {
  dockerfile_ += jsonArrayLine("ENTRYPOINT", commands);
  return *this;
}

Image& Image::entrypoint(const JsValue& commands) {
  return entrypoint(stringList(commands.value, "entrypoint_commands must be a list of strings"));
}

Image& Image::cmd(const std::vector<std::string>& commands) {
  dockerfile_ += jsonArrayLine("CMD", commands);
  return *this;
}

Image& Image::cmd(const JsValue& commands) {
  return cmd(stringList(commands.value, "Image CMD must be a list of strings"));
}

Image& Image::dockerfileCommands(const std::vector<std::string>& commands,
                                 std::string_view context_dir, const ContextOptions& options) {
  std::string prefix(context_dir);
  if (context_dir.empty() && options.strictContext) {
    throw DaytonaInvalidArgumentError(
        "strictContext requires contextDir so that the build context boundary is explicit");
  }
  std::string root;
  if (!context_dir.empty()) {
    std::string expanded = image::js::expandTilde(context_dir);
    switch (statKind(expanded)) {
      case Kind::kMissing:
        throw DaytonaNotFoundError("Context directory " + prefix + " does not exist");
      case Kind::kDirectory:
        break;
      default:
        throw DaytonaInvalidArgumentError("Context path " + prefix +
                                          " exists but is not a directory");
    }
    if (options.strictContext) prefix = expanded;
    root = expanded;
  }
  std::string joined;
  for (std::size_t i = 0; i < commands.size(); ++i) {
    if (i > 0) joined += '\n';
    joined += commands[i];
  }
  std::vector<ContextEntry> found = discoverOrThrow(joined, prefix, options.strictContext, root);
  context_list_.insert(context_list_.end(), found.begin(), found.end());
  dockerfile_ += joined + "\n";
  return *this;
}

}  // namespace cairn
