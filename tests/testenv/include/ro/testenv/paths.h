// Where the harness finds binaries and keeps its files.
//
// Environment variables read (all optional):
//   RO_BIN_DIR       our built binaries (CTest sets it: <build>/bin)
//   RO_SOURCE_DIR    the source tree (CTest sets it)
//   RO_CACHE         tool cache; default ${XDG_CACHE_HOME:-$HOME/.cache}/resiliency-operator
//                    (mirrors scripts/lib.sh)
//   RO_KUBE_BIN      kube-apiserver + kube-controller-manager; default $RO_CACHE/kube-1.20.2/bin
//   RO_TESTENV_KEEP  "1": keep every server's temp dir after it stops (path printed on stderr)
//   TMPDIR           parent of the servers' temp dirs (default /tmp)
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace ro::testenv {

// $RO_BIN_DIR. Throws TestEnvError when unset (run the test through CTest).
std::filesystem::path BinDir();
// $RO_SOURCE_DIR. Throws TestEnvError when unset (run the test through CTest).
std::filesystem::path SourceDir();
// The tool cache (see above). Never throws; the directory may not exist.
std::filesystem::path CacheDir();
// Directory holding kube-apiserver and kube-controller-manager (see above).
std::filesystem::path KubeBinDir();

// Absolute path of `name` found in $PATH, or `name` itself when it contains a '/'.
// Throws TestEnvError naming the program and the hint (e.g. "run scripts/setup.sh")
// when it is not found or not executable.
std::filesystem::path FindExecutable(std::string_view name, std::string_view hint);

// The value of environment variable `name`, or `fallback` when unset or empty.
std::string EnvOr(const char* name, std::string_view fallback);

// A fresh directory under $TMPDIR named ro-testenv-<label>-XXXXXX, removed with its
// contents on destruction unless RO_TESTENV_KEEP=1. Move-only.
class TempDir {
 public:
  // Throws TestEnvError when the directory cannot be created.
  explicit TempDir(std::string_view label);
  ~TempDir();
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&&) = delete;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;  // empty after a move
};

// Writes `content` to `path` (truncating), with permission bits `mode`.
// Throws TestEnvError on failure.
void WriteFile(const std::filesystem::path& path, std::string_view content, int mode = 0644);
// Reads the whole file. Throws TestEnvError when it cannot be read.
std::string ReadFile(const std::filesystem::path& path);

}  // namespace ro::testenv
