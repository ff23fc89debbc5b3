// The declarative Image DSL: builds Dockerfile text plus the list of local paths the build
// needs, byte for byte as the TypeScript SDK `@daytonaio/sdk@0.218.0` does (spec §3.5–§3.9).
//
//   cairn::Image image = cairn::Image::debianSlim("3.12")
//                            .pipInstall({"numpy", "requests>=2.0"})
//                            .addLocalDir("src", "/home/daytona/src")
//                            .runCommands("echo ready", std::vector<std::string>{"ls", "-l"})
//                            .env({{"APP_ENV", "prod"}})
//                            .workdir("/home/daytona");
//   image.dockerfile();   // "FROM python:3.12.10-slim-bookworm\n…"
//   image.contextList();  // [{sourcePath: "src", archivePath: "src"}]
//
// Like the SDK it mirrors, the Image surface throws: DaytonaNotFoundError for a missing path,
// DaytonaInvalidArgumentError for a bad argument, with the SDK's exact messages. Methods append
// to the Image and return it, so calls chain. Paths are used as given (relative ones resolve
// against the current directory when hashed and archived); a leading `~` is expanded.
//
// Beyond the SDK (spec §0.6): COPY-source discovery in fromDockerfile and dockerfileCommands
// also recognises ADD, expands unquoted globs and honours the context's .dockerignore. For
// input without those, the result is the SDK's.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "cairn/common/json.h"
#include "cairn/image/errors.h"

namespace cairn {

namespace dockerfile {
class DockerIgnore;
}

//! One local path the build needs: `sourcePath` on this machine, stored in the context archive
//! under `archivePath` (spec §2.4). Field names are the SDK's.
struct ContextEntry {
  std::string sourcePath;
  std::string archivePath;
  //! The .dockerignore of the build context the entry was discovered in (fromDockerfile /
  //! dockerfileCommands with a context directory holding one); null when none applies. Applied
  //! to the entry's contents when hashing and archiving (paths relative to that context).
  std::shared_ptr<const dockerfile::DockerIgnore> dockerignore;

  friend bool operator==(const ContextEntry& a, const ContextEntry& b) {
    return a.sourcePath == b.sourcePath && a.archivePath == b.archivePath &&
           a.dockerignore == b.dockerignore;
  }
};

//! pip's package-index options; each is emitted only when set, in this order (spec §3.5).
struct PipInstallOptions {
  std::vector<std::string> findLinks = {};
  std::string indexUrl = {};  // "" = not set
  std::vector<std::string> extraIndexUrls = {};
  bool pre = false;
  std::string extraOptions = {};  // trimmed, appended verbatim
};

//! pipInstallFromPyproject's options: the groups of [project.optional-dependencies] to add.
struct PyprojectOptions : PipInstallOptions {
  std::optional<std::vector<std::string>> optionalDependencies;
};

//! fromDockerfile / dockerfileCommands: with strictContext, COPY sources that leave the
//! context directory are rejected (SDK 0.218).
struct ContextOptions {
  bool strictContext = false;
};

//! One argument of runCommands(): a shell string (`RUN <c>`) or an argv list (`RUN "a" "b"`).
class RunCommand {
 public:
  RunCommand(const char* shell) : value_(std::string(shell)) {}           // NOLINT
  RunCommand(std::string shell) : value_(std::move(shell)) {}             // NOLINT
  RunCommand(std::string_view shell) : value_(std::string(shell)) {}      // NOLINT
  RunCommand(std::vector<std::string> argv) : value_(std::move(argv)) {}  // NOLINT

  const std::variant<std::string, std::vector<std::string>>& value() const { return value_; }

 private:
  std::variant<std::string, std::vector<std::string>> value_;
};

//! A value as dynamically typed as the TypeScript SDK's arguments, for callers that hold JSON
//! (specs, bindings, the parity test). Wrapping it keeps overloads unambiguous.
struct JsValue {
  explicit JsValue(OrderedJson v) : value(std::move(v)) {}
  OrderedJson value;  // ordered: env() keeps the object's key order, like Object.entries
};

class Image {
 public:
  //! `FROM <image>`.
  static Image base(std::string_view image);
  //! python:<ver>-slim-bookworm plus the SDK's four setup lines. `python_version` is a series
  //! ("3.9" … "3.13"); "" or nullopt means the latest. Anything else throws.
  static Image debianSlim(std::optional<std::string> python_version = std::nullopt);
  //! The Dockerfile's text verbatim; its COPY/ADD sources (relative to its directory) become
  //! context entries.
  static Image fromDockerfile(std::string_view path, const ContextOptions& options = {});

  //! `RUN python -m pip install <sorted, quoted packages><options>`; nothing for no packages.
  Image& pipInstall(const std::vector<std::string>& packages,
                    const PipInstallOptions& options = {});
  //! One package (a `const char*`, so that `pipInstall({"a", "b"})` stays a list).
  Image& pipInstall(const char* package, const PipInstallOptions& options = {});
  //! The SDK's dynamic form: a string or (nested) arrays of strings; anything else throws
  //! `pipInstall: packages must only contain strings`.
  Image& pipInstall(const JsValue& packages, const PipInstallOptions& options = {});
  //! COPYs the requirements file to /.requirements.txt and installs from it.
  Image& pipInstallFromRequirements(std::string_view requirements_txt,
                                    const PipInstallOptions& options = {});
  //! Installs [project.dependencies] (plus the requested optional groups) of a pyproject.toml.
  Image& pipInstallFromPyproject(std::string_view pyproject_toml,
                                 const PyprojectOptions& options = {});

  //! `COPY <local> <remote>`; a remote ending in `/` gets the local file's name appended.
  Image& addLocalFile(std::string_view local_path, std::string_view remote_path);
  Image& addLocalDir(std::string_view local_path, std::string_view remote_path);

  Image& runCommands(const std::vector<RunCommand>& commands);
  template <typename... Commands>
  requires(sizeof...(Commands) > 0 &&
           !(std::is_same_v<std::decay_t<Commands>, std::vector<RunCommand>> ||
             ...)) Image& runCommands(Commands&&... commands) {
    return runCommands(std::vector<RunCommand>{RunCommand(std::forward<Commands>(commands))...});
  }

  //! `ENV K=<quoted V>` per pair. Like a JavaScript object: integer-like keys come first in
  //! ascending order, a repeated key keeps its first position and its last value.
  Image& env(const std::vector<std::pair<std::string, std::string>>& vars);
  //! The SDK's dynamic form: a JSON object whose values must all be strings.
  Image& env(const JsValue& vars);
  Image& workdir(std::string_view dir_path);
  //! `ENTRYPOINT ["a", "b"]` (arguments are not escaped, as in the SDK).
  Image& entrypoint(const std::vector<std::string>& commands);
  Image& entrypoint(const JsValue& commands);
  Image& cmd(const std::vector<std::string>& commands);
  Image& cmd(const JsValue& commands);
  //! Appends the lines verbatim; with a context directory ("" = none), their COPY/ADD sources
  //! become context entries.
  Image& dockerfileCommands(const std::vector<std::string>& commands,
                            std::string_view context_dir = {}, const ContextOptions& options = {});

  const std::string& dockerfile() const { return dockerfile_; }
  const std::vector<ContextEntry>& contextList() const { return context_list_; }

 private:
  Image() = default;

  std::string dockerfile_;
  std::vector<ContextEntry> context_list_;
};

}  // namespace cairn
