#include "cairn/image/image.h"

#include <gtest/gtest.h>

#include "cairn/image/context.h"
#include "test_util.h"

namespace cairn {
namespace {

using ::cairn::testing::ScopedWorkDir;

constexpr const char* kSlimTail =
    "RUN apt-get update\n"
    "RUN apt-get install -y gcc gfortran build-essential\n"
    "RUN pip install --upgrade pip\n"
    "RUN echo 'debconf debconf/frontend select Noninteractive' | debconf-set-selections\n";

template <typename E, typename F>
std::string messageOf(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("wrong exception type: ") + e.what();
  }
  return "no exception";
}

TEST(ImageTest, BaseAndDebianSlimVersionTable) {
  EXPECT_EQ(Image::base("alpine:3.19").dockerfile(), "FROM alpine:3.19\n");
  EXPECT_EQ(Image::debianSlim().dockerfile(),
            std::string("FROM python:3.13.3-slim-bookworm\n") + kSlimTail);
  EXPECT_EQ(Image::debianSlim("").dockerfile(),
            std::string("FROM python:3.13.3-slim-bookworm\n") + kSlimTail);
  const std::pair<const char*, const char*> table[] = {{"3.9", "3.9.22"},
                                                       {"3.10", "3.10.17"},
                                                       {"3.11", "3.11.12"},
                                                       {"3.12", "3.12.10"},
                                                       {"3.13", "3.13.3"}};
  for (const auto& [series, micro] : table) {
    EXPECT_EQ(Image::debianSlim(series).dockerfile(),
              std::string("FROM python:") + micro + "-slim-bookworm\n" + kSlimTail);
  }
  EXPECT_TRUE(Image::debianSlim().contextList().empty());
}

TEST(ImageTest, DebianSlimRejectsUnsupportedVersions) {
  for (const char* v : {"3.12.1", "3.8", "2", "3.14"}) {
    EXPECT_EQ(messageOf<DaytonaInvalidArgumentError>([&] { Image::debianSlim(v); }),
              std::string("Unsupported Python version: ") + v +
                  ". Daytona supports the following series: 3.9, 3.10, 3.11, 3.12, 3.13");
  }
}

TEST(ImageTest, PipInstallSortsQuotesAndAppendsOptionsInOrder) {
  PipInstallOptions o;
  o.findLinks = {"https://x/y"};
  o.indexUrl = "https://pypi.org/simple";
  o.extraIndexUrls = {"https://e/1"};
  o.pre = true;
  o.extraOptions = " --no-cache-dir ";
  Image img = Image::base("x");
  img.pipInstall({"requests>=2.0", "numpy", "a b"}, o);
  EXPECT_EQ(img.dockerfile(),
            "FROM x\nRUN python -m pip install 'a b' numpy requests\\>\\=2.0 --find-links "
            "https\\://x/y --index-url https\\://pypi.org/simple --extra-index-url "
            "https\\://e/1 --pre --no-cache-dir\n");
}

TEST(ImageTest, PipInstallNestedListsSingleStringAndEmpty) {
  Image img = Image::base("x");
  img.pipInstall(JsValue(OrderedJson::parse(R"(["b", ["a", "c"]])")));
  img.pipInstall("numpy");
  img.pipInstall(std::vector<std::string>{});
  img.pipInstall({"b", "B", "a", "b"});  // byte order, duplicates kept
  EXPECT_EQ(img.dockerfile(),
            "FROM x\nRUN python -m pip install a b c\nRUN python -m pip install numpy\n"
            "RUN python -m pip install B a b b\n");
  EXPECT_EQ(messageOf<DaytonaInvalidArgumentError>(
                [&] { img.pipInstall(JsValue(OrderedJson::parse(R"(["a", 1])"))); }),
            "pipInstall: packages must only contain strings");
}

TEST(ImageTest, PipInstallFromRequirements) {
  ScopedWorkDir wd;
  wd.write("requirements.txt", "numpy\n");
  PipInstallOptions o;
  o.pre = true;
  Image img = Image::base("x");
  img.pipInstallFromRequirements("requirements.txt", o);
  EXPECT_EQ(img.dockerfile(),
            "FROM x\nCOPY requirements.txt /.requirements.txt\n"
            "RUN python -m pip install -r /.requirements.txt --pre\n");
  ASSERT_EQ(img.contextList().size(), 1u);
  EXPECT_EQ(img.contextList()[0].sourcePath, "requirements.txt");
  EXPECT_EQ(img.contextList()[0].archivePath, "requirements.txt");

  EXPECT_EQ(messageOf<DaytonaNotFoundError>([&] { img.pipInstallFromRequirements("nope.txt"); }),
            "Requirements file nope.txt does not exist");
  wd.mkdir("dir");
  EXPECT_EQ(messageOf<DaytonaInvalidArgumentError>([&] { img.pipInstallFromRequirements("dir"); }),
            "Requirements path dir exists but is not a file");
}

TEST(ImageTest, PipInstallFromPyproject) {
  ScopedWorkDir wd;
  wd.write("pyproject.toml",
           "[project]\nname = \"x\"\ndependencies = [\"requests>=2\", \"pydantic\"]\n"
           "[project.optional-dependencies]\ndev = [\"pytest\"]\n");
  PyprojectOptions o;
  o.optionalDependencies = std::vector<std::string>{"dev", "nope"};
  Image img = Image::base("x");
  img.pipInstallFromPyproject("pyproject.toml", o);
  EXPECT_EQ(img.dockerfile(),
            "FROM x\nRUN python -m pip install pydantic pytest requests\\>\\=2\n");
  EXPECT_TRUE(img.contextList().empty());

  wd.write("nodeps.toml", "[project]\nname = \"x\"\n");
  EXPECT_EQ(
      messageOf<DaytonaInvalidArgumentError>([&] { img.pipInstallFromPyproject("nodeps.toml"); }),
      "No [project.dependencies] section in pyproject.toml file. See "
      "https://packaging.python.org/en/latest/guides/writing-pyproject-toml for further "
      "file format guidelines.");
  wd.write("badopt.toml", "[project]\ndependencies = []\noptional-dependencies = [\"x\"]\n");
  EXPECT_EQ(messageOf<DaytonaInvalidArgumentError>(
                [&] { img.pipInstallFromPyproject("badopt.toml", o); }),
            "optional-dependencies must be a mapping in pyproject.toml");
  wd.write("broken.toml", "[project\n");
  EXPECT_THAT(
      messageOf<DaytonaInvalidArgumentError>([&] { img.pipInstallFromPyproject("broken.toml"); }),
      ::testing::StartsWith("Invalid pyproject.toml file broken.toml: "));
  EXPECT_EQ(messageOf<DaytonaNotFoundError>([&] { img.pipInstallFromPyproject("none.toml"); }),
            "pyproject.toml file none.toml does not exist");
}

TEST(ImageTest, AddLocalFileAndDir) {
  ScopedWorkDir wd;
  wd.write("requirements.txt", "numpy\n");
  wd.write("src/a.py", "x\n");
  Image img = Image::base("x");
  img.addLocalFile("requirements.txt", "/home/daytona/");
  img.addLocalFile("requirements.txt", "/r.txt");
  img.addLocalDir("src", "/home/daytona/src");
  EXPECT_EQ(img.dockerfile(),
            "FROM x\nCOPY requirements.txt /home/daytona/requirements.txt\n"
            "COPY requirements.txt /r.txt\nCOPY src /home/daytona/src\n");
  ASSERT_EQ(img.contextList().size(), 3u);
  EXPECT_EQ(img.contextList()[2].sourcePath, "src");
  EXPECT_EQ(img.contextList()[2].archivePath, "src");

  EXPECT_EQ(messageOf<DaytonaNotFoundError>([&] { img.addLocalFile("missing", "/m"); }),
            "Local file missing does not exist");
  EXPECT_EQ(messageOf<DaytonaInvalidArgumentError>([&] { img.addLocalFile("src", "/m"); }),
            "Local path src exists but is not a file");
  EXPECT_EQ(messageOf<DaytonaNotFoundError>([&] { img.addLocalDir("missing", "/m"); }),
            "Local directory missing does not exist");
  EXPECT_EQ(
      messageOf<DaytonaInvalidArgumentError>([&] { img.addLocalDir("requirements.txt", "/m"); }),
      "Local path requirements.txt exists but is not a directory");
}

TEST(ImageTest, TildeIsExpandedToHome) {
  ScopedWorkDir wd;
  wd.write("home/proj/req.txt", "x\n");
  Image img = Image::base("x");
  img.addLocalFile("~/proj/req.txt", "/app/");
  std::string expanded = (wd.path() / "home/proj/req.txt").string();
  EXPECT_EQ(img.dockerfile(), "FROM x\nCOPY " + expanded + " /app/req.txt\n");
  EXPECT_EQ(img.contextList()[0].sourcePath, expanded);
  EXPECT_EQ(img.contextList()[0].archivePath, expanded);
}

TEST(ImageTest, RunCommandsShellAndArgvForms) {
  Image img = Image::base("x");
  img.runCommands("echo \"hello\"", std::vector<std::string>{"bash", "-c", "echo \"it's\""});
  img.runCommands(std::vector<std::string>{"echo", "a b", "c\"d"});
  EXPECT_EQ(img.dockerfile(),
            "FROM x\nRUN echo \"hello\"\nRUN \"bash\" \"-c\" \"echo \\\\\\\"it\\'s\\\\\\\"\"\n"
            "RUN \"echo\" \"a b\" \"c\\\\\\\"d\"\n");
}

TEST(ImageTest, EnvWorkdirEntrypointCmd) {
  Image img = Image::base("x");
  img.env({{"FOO", "bar"}, {"SP", "a b"}, {"Q", "it's"}, {"E", ""}, {"D", "$HOME"}});
  img.workdir("/home/daytona").workdir("/a b").workdir("~/x");
  img.entrypoint({"/bin/bash", "-c"}).cmd({"sleep", "infinity"});
  EXPECT_EQ(img.dockerfile(),
            "FROM x\nENV FOO=bar\nENV SP='a b'\nENV Q=\"it's\"\nENV E=''\nENV D=\\$HOME\n"
            "WORKDIR /home/daytona\nWORKDIR '/a b'\nWORKDIR \\~/x\n"
            "ENTRYPOINT [\"/bin/bash\", \"-c\"]\nCMD [\"sleep\", \"infinity\"]\n");
}

TEST(ImageTest, EnvFollowsJavaScriptObjectKeyOrder) {
  Image img = Image::base("x");
  img.env({{"B", "1"}, {"10", "x"}, {"2", "y"}, {"B", "2"}});
  EXPECT_EQ(img.dockerfile(), "FROM x\nENV 2=y\nENV 10=x\nENV B=2\n");
}

TEST(ImageTest, DynamicFormsRejectNonStrings) {
  Image img = Image::base("x");
  EXPECT_EQ(messageOf<DaytonaInvalidArgumentError>(
                [&] { img.env(JsValue(OrderedJson::parse(R"({"A":"1","B":2,"C":null})"))); }),
            "Image ENV variables must be strings. Invalid keys: B,C");
  EXPECT_EQ(messageOf<DaytonaInvalidArgumentError>(
                [&] { img.entrypoint(JsValue(OrderedJson::parse(R"(["a", 1])"))); }),
            "entrypoint_commands must be a list of strings");
  EXPECT_EQ(messageOf<DaytonaInvalidArgumentError>(
                [&] { img.cmd(JsValue(OrderedJson::parse(R"("sleep")"))); }),
            "Image CMD must be a list of strings");
  EXPECT_EQ(img.dockerfile(), "FROM x\n");
}

TEST(ImageTest, DockerfileCommandsWithContextDir) {
  ScopedWorkDir wd;
  wd.write("ctx/src/a.py", "x\n");
  std::string ctx = (wd.path() / "ctx").string();
  Image img = Image::base("x");
  img.dockerfileCommands({"RUN echo x", "COPY src/a.py /a.py"}, ctx);
  EXPECT_EQ(img.dockerfile(), "FROM x\nRUN echo x\nCOPY src/a.py /a.py\n");
  ASSERT_EQ(img.contextList().size(), 1u);
  EXPECT_EQ(img.contextList()[0].sourcePath, ctx + "/src/a.py");
  EXPECT_EQ(img.contextList()[0].archivePath, "src/a.py");

  EXPECT_EQ(messageOf<DaytonaNotFoundError>([&] { img.dockerfileCommands({"RUN x"}, "nope"); }),
            "Context directory nope does not exist");
  EXPECT_EQ(messageOf<DaytonaInvalidArgumentError>(
                [&] { img.dockerfileCommands({"RUN x"}, "ctx/src/a.py"); }),
            "Context path ctx/src/a.py exists but is not a directory");
  ContextOptions strict;
  strict.strictContext = true;
  EXPECT_EQ(messageOf<DaytonaInvalidArgumentError>(
                [&] { img.dockerfileCommands({"RUN x"}, "", strict); }),
            "strictContext requires contextDir so that the build context boundary is explicit");
  EXPECT_EQ(messageOf<DaytonaInvalidArgumentError>(
                [&] { img.dockerfileCommands({"COPY ../x /x"}, "ctx", strict); }),
            "forbidden path outside the build context: ../x");
  EXPECT_EQ(messageOf<DaytonaInvalidArgumentError>(
                [&] { img.dockerfileCommands({"COPY /etc/passwd /x"}, "ctx", strict); }),
            "forbidden path outside the build context: /etc/passwd");
}

TEST(ImageTest, FromDockerfileDiscoversCopySources) {
  ScopedWorkDir wd;
  wd.write("proj/src/a.py", "x\n");
  wd.write("proj/requirements.txt", "numpy\n");
  const std::string text =
      "FROM python:3.12\n"
      "# COPY commented.txt /x\n"
      "COPY --chown=1:1 requirements.txt \\\n"
      "     /app/\n"
      "COPY [\"src\", \"/app/src\"]\n"
      "COPY --from=build /out /out\n"
      "COPY <<EOF /etc/x\nhi\nEOF\n";
  wd.write("proj/Dockerfile", text);
  Image img = Image::fromDockerfile("proj/Dockerfile");
  EXPECT_EQ(img.dockerfile(), text);
  std::string root = (wd.path() / "proj").string();
  ASSERT_EQ(img.contextList().size(), 2u);
  EXPECT_EQ(img.contextList()[0].sourcePath, root + "/requirements.txt");
  EXPECT_EQ(img.contextList()[0].archivePath, "requirements.txt");
  EXPECT_EQ(img.contextList()[1].sourcePath, root + "/src");
  EXPECT_EQ(img.contextList()[1].archivePath, "src");

  EXPECT_EQ(messageOf<DaytonaNotFoundError>([&] { Image::fromDockerfile("nope/Dockerfile"); }),
            "Dockerfile nope/Dockerfile does not exist");
  EXPECT_EQ(messageOf<DaytonaInvalidArgumentError>([&] { Image::fromDockerfile("proj"); }),
            "Dockerfile path proj exists but is not a file");
}

// Spec §0.6: beyond the SDK.
TEST(ImageTest, DiscoveryHandlesAddUnquotedGlobsAndDockerignore) {
  ScopedWorkDir wd;
  wd.write("ctx/src/a.py", "a\n");
  wd.write("ctx/src/b.py", "b\n");
  wd.write("ctx/src/skip.py", "s\n");
  wd.write("ctx/src/notes.txt", "n\n");
  wd.write("ctx/data.tgz", "d\n");
  wd.write("ctx/.dockerignore", "src/skip.py\n");
  std::string ctx = (wd.path() / "ctx").string();
  Image img = Image::base("x");
  img.dockerfileCommands({"COPY src/*.py /app/", "ADD data.tgz https://example.com/x.tgz /d/",
                          "ADD git@github.com:a/b.git /src"},
                         ctx);
  std::vector<std::string> archive_paths;
  for (const ContextEntry& e : img.contextList())
    archive_paths.push_back(e.archivePath);
  EXPECT_EQ(archive_paths, (std::vector<std::string>{"src/a.py", "src/b.py", "data.tgz"}));
  EXPECT_NE(img.contextList()[0].dockerignore, nullptr);
}

TEST(ImageTest, FromDockerfileHonoursDockerignoreWhenHashingAndArchiving) {
  ScopedWorkDir wd;
  wd.write("app/Dockerfile", "FROM python:3.12\nCOPY . /app\n");
  wd.write("app/main.py", "print(1)\n");
  wd.write("app/debug.log", "noise\n");
  wd.write("app/node_modules/m/index.js", "x\n");
  wd.write("app/node_modules/keep.txt", "k\n");
  wd.write("app/.dockerignore", "*.log\nnode_modules\n!node_modules/keep.txt\n");
  Image img = Image::fromDockerfile("app/Dockerfile");
  ASSERT_EQ(img.contextList().size(), 1u);
  const ContextEntry& e = img.contextList()[0];
  EXPECT_EQ(e.archivePath, "");
  ASSERT_NE(e.dockerignore, nullptr);
  ASSERT_OK_AND_ASSIGN(std::string tar, contextArchive(e));
  std::vector<std::string> names;
  for (std::size_t off = 0; off + 512 <= tar.size(); off += 512) {
    std::string_view block(tar.data() + off, 512);
    if (block == std::string(512, '\0')) break;
    std::string name(block.substr(0, 100).data(), strnlen(block.data(), 100));
    std::size_t size = std::stoul(std::string(block.substr(124, 11)), nullptr, 8);
    names.push_back(name);
    off += (size + 511) / 512 * 512;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"./", "./.dockerignore", "./Dockerfile", "./main.py",
                                             "./node_modules/keep.txt"}));
  // The hash covers exactly the kept files: equal to the hash of a tree holding only them.
  ASSERT_OK_AND_ASSIGN(std::string filtered, contextHash(e));
  wd.write("plain/Dockerfile", "FROM python:3.12\nCOPY . /app\n");
  wd.write("plain/main.py", "print(1)\n");
  wd.write("plain/node_modules/keep.txt", "k\n");
  wd.write("plain/.dockerignore", "*.log\nnode_modules\n!node_modules/keep.txt\n");
  ContextEntry plain{(wd.path() / "plain").string(), "", nullptr};
  EXPECT_EQ(contextHash(plain).value(), filtered);
  ContextEntry unfiltered = e;
  unfiltered.dockerignore = nullptr;
  EXPECT_NE(contextHash(unfiltered).value(), filtered);
}

TEST(ImageTest, UnquotedGlobsAlsoMatchDirectoriesLikeDocker) {
  ScopedWorkDir wd;
  wd.write("ctx/src/a.py", "a\n");
  wd.write("ctx/src/pkg/b.py", "b\n");
  wd.write("ctx/src/pkg/deep/c.py", "c\n");
  std::string ctx = (wd.path() / "ctx").string();
  Image img = Image::base("x");
  img.dockerfileCommands({"COPY src/* /app/", "COPY \"src/*\" /quoted/"}, ctx);
  std::vector<std::string> archive_paths;
  for (const ContextEntry& e : img.contextList())
    archive_paths.push_back(e.archivePath);
  // Unquoted (Cairn, §0.6): the file and the directory; quoted (the SDK's fast-glob): files only.
  EXPECT_EQ(archive_paths, (std::vector<std::string>{"src/a.py", "src/pkg", "src/a.py"}));
  ASSERT_OK_AND_ASSIGN(std::string tar, contextArchive(img.contextList()[1]));
  EXPECT_NE(tar.find("src/pkg/deep/c.py"), std::string::npos);
}

TEST(ImageTest, DiscoveryRejectsABrokenDockerignore) {
  ScopedWorkDir wd;
  wd.write("ctx/.dockerignore", "!\n");
  Image img = Image::base("x");
  EXPECT_THAT(
      messageOf<DaytonaInvalidArgumentError>([&] { img.dockerfileCommands({"COPY a /a"}, "ctx"); }),
      ::testing::HasSubstr(".dockerignore"));
}

}  // namespace
}  // namespace cairn
