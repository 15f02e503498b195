#include "ro/testenv/paths.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <system_error>

#include "ro/testenv/errors.h"

namespace ro::testenv {
namespace fs = std::filesystem;

namespace {

// Version of kube-apiserver built by scripts/build-kube.sh (scripts/lib.sh RO_KUBE_VERSION).
constexpr std::string_view kKubeVersion = "1.20.2";

fs::path RequiredEnvDir(const char* name) {
  std::string value = EnvOr(name, "");
  if (value.empty()) {
    throw TestEnvError(std::string("environment variable ") + name +
                       " is not set: run the test through ctest (tests/CMakeLists.txt sets it)");
  }
  return fs::path(value);
}

bool KeepTempDirs() { return EnvOr("RO_TESTENV_KEEP", "") == "1"; }

}  // namespace

std::string EnvOr(const char* name, std::string_view fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::string(fallback);
  return value;
}

fs::path BinDir() { return RequiredEnvDir("RO_BIN_DIR"); }
fs::path SourceDir() { return RequiredEnvDir("RO_SOURCE_DIR"); }

fs::path CacheDir() {
  std::string cache = EnvOr("RO_CACHE", "");
  if (!cache.empty()) return cache;
  std::string xdg = EnvOr("XDG_CACHE_HOME", "");
  fs::path base = xdg.empty() ? fs::path(EnvOr("HOME", "/root")) / ".cache" : fs::path(xdg);
  return base / "resiliency-operator";
}

fs::path KubeBinDir() {
  std::string dir = EnvOr("RO_KUBE_BIN", "");
  if (!dir.empty()) return dir;
  return CacheDir() / ("kube-" + std::string(kKubeVersion)) / "bin";
}

fs::path FindExecutable(std::string_view name, std::string_view hint) {
  auto executable = [](const fs::path& p) { return ::access(p.c_str(), X_OK) == 0 && !fs::is_directory(p); };
  if (name.find('/') != std::string_view::npos) {
    fs::path p(name);
    if (executable(p)) return p;
  } else {
    std::stringstream path_list(EnvOr("PATH", "/usr/local/bin:/usr/bin:/bin"));
    std::string dir;
    while (std::getline(path_list, dir, ':')) {
      if (dir.empty()) continue;
      fs::path p = fs::path(dir) / name;
      if (executable(p)) return p;
    }
  }
  throw TestEnvError("executable not found: " + std::string(name) + " (" + std::string(hint) + ")");
}

TempDir::TempDir(std::string_view label) {
  fs::path base = EnvOr("TMPDIR", "/tmp");
  std::string templ = (base / ("ro-testenv-" + std::string(label) + "-XXXXXX")).string();
  if (::mkdtemp(templ.data()) == nullptr) {
    throw TestEnvError("cannot create temp dir " + templ + ": " + std::strerror(errno));
  }
  path_ = templ;
}

TempDir::TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }

TempDir::~TempDir() {
  if (path_.empty()) return;
  if (KeepTempDirs()) {
    std::cerr << "ro-testenv: kept " << path_.string() << " (RO_TESTENV_KEEP=1)\n";
    return;
  }
  std::error_code ec;
  fs::remove_all(path_, ec);  // best effort: a destructor must not throw
}

void WriteFile(const fs::path& path, std::string_view content, int mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, static_cast<mode_t>(mode));
  if (fd < 0) throw TestEnvError("cannot write " + path.string() + ": " + std::strerror(errno));
  ::fchmod(fd, static_cast<mode_t>(mode));  // O_CREAT's mode is masked by umask; be exact
  std::size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      throw TestEnvError("cannot write " + path.string() + ": " + std::strerror(err));
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TestEnvError("cannot read " + path.string());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace ro::testenv
