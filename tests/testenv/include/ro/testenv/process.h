// Child processes of the harness: long-running servers (Process) and short helper
// commands (RunCommand), both started with fork/exec.
//
// Guarantees, so that no server outlives the test process:
//   - the child is in its own process group and gets prctl(PR_SET_PDEATHSIG, SIGKILL):
//     the kernel kills it if the harness process dies (crash, abort, failed assertion
//     that exits, SIGKILL);
//   - Process stops the child by PID in its destructor: SIGTERM to the process group,
//     SIGKILL after ProcessOptions::stop_timeout;
//   - each started PID is recorded as the file $RO_TESTENV_PIDDIR/<pid> (content: the
//     command line) while it runs, when that variable is set; scripts/test.sh kills and
//     reports whatever is left there after the suite.
// PR_SET_PDEATHSIG fires when the *thread* that forked exits, so each Process forks from
// a small thread it owns for its whole life: a Process may be created on any thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "ro/testenv/errors.h"

namespace ro::testenv {

// The last `lines` (>= 1) lines of the file at `path` (at most its last 64 KiB), "" when
// it does not exist. Process::LogTail and the tests' own log files use it.
std::string TailOfFile(const std::filesystem::path& path, std::size_t lines = 40);

// How to start a long-running server.
struct ProcessOptions {
  // Name for messages ("etcd", "kube-apiserver"). Required.
  std::string name;
  // argv[0] is the program: an absolute path, or a name looked up in $PATH. Required.
  std::vector<std::string> argv;
  // stdout and stderr of the child are appended to this file. Required.
  std::filesystem::path log_path;
  // Extra environment variables (NAME, value) on top of the harness's environment.
  std::vector<std::pair<std::string, std::string>> env;
  // Working directory of the child; empty = the harness's.
  std::filesystem::path working_dir;
  // Grace period between SIGTERM and SIGKILL when stopping.
  std::chrono::milliseconds stop_timeout{5000};
};

// User + system CPU time a process has used so far (all its threads; not its children),
// from /proc/<pid>/stat, in clock ticks turned to microseconds (10 ms resolution at the
// usual 100 Hz). nullopt when the process is gone. For benchmarks' per-process costs.
std::optional<std::chrono::microseconds> CpuTime(pid_t pid);

// One running child process. Not copyable or movable (its spawner thread refers to it).
// Thread-safety: Stop()/Running() may be called from any thread; not concurrently with
// destruction.
class Process {
 public:
  // Forks and execs. Returns once exec succeeded. Throws TestEnvError (with the command
  // line and errno text) when fork or exec fails, e.g. the program does not exist.
  explicit Process(ProcessOptions options);
  // Stop().
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& name() const { return options_.name; }
  const std::filesystem::path& log_path() const { return options_.log_path; }
  // The command line, shell-quoted, for messages.
  std::string CommandLine() const;

  // True while the child has not exited. Does not reap it.
  bool Running() const;
  // How the child ended ("exit status 1", "killed by signal 9"), or nullopt while running.
  std::optional<std::string> ExitDescription() const;

  // SIGTERM to the child's process group, wait up to stop_timeout, then SIGKILL; reaps
  // the child and removes its PID file. Idempotent; never throws.
  void Stop() noexcept;
  // kill -9: SIGKILL to the child's process group at once (no SIGTERM, no grace), then
  // reaps it like Stop(). For crash tests. Idempotent; never throws.
  void Kill() noexcept;

  // The last `lines` (>= 1) lines of the log file ("" when it does not exist).
  std::string LogTail(std::size_t lines = 40) const;

  // Polls `probe` (every 25 ms) until it returns true; returns the time waited. Throws
  // Failure("exited (<how>) before it was ready") as soon as the process exits, and
  // Failure("was not ready after <timeout> ms (waiting for <what>; last probe error:
  // ...)") at the deadline. A probe that throws counts as "not ready yet". Use it to
  // wait for a spawned binary's health endpoint.
  std::chrono::milliseconds WaitUntilReady(const std::function<bool()>& probe, std::chrono::milliseconds timeout,
                                           std::string_view what) const;

  // A TestEnvError whose message is "<name> <what>", the command line and the log tail.
  // Servers throw this when start-up fails.
  [[nodiscard]] TestEnvError Failure(std::string_view what) const;

 private:
  void SpawnerMain(std::stop_token stop);
  // Stop() (graceful: SIGTERM first) and Kill().
  void End(bool graceful) noexcept;

  // Constant after construction.
  ProcessOptions options_;
  pid_t pid_ = -1;

  // Guarded by mu_.
  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  bool spawned_ = false;          // the spawner thread finished fork/exec
  std::string spawn_error_;       // non-empty: fork/exec failed
  mutable std::optional<int> wait_status_;  // set once reaped or seen exited
  bool stopped_ = false;

  std::jthread spawner_;  // forks the child and lives as long as this object
};

// Outcome of RunCommand.
struct CommandResult {
  int exit_code = -1;   // exit status, or 128 + signal number when killed by a signal
  std::string out;      // stdout
  std::string err;      // stderr
};

// Options of RunCommand.
struct RunOptions {
  std::string stdin_data;                                    // written to the child's stdin
  std::vector<std::pair<std::string, std::string>> env;      // extra environment variables
  std::chrono::milliseconds timeout{60000};                  // then SIGKILL
  bool check = true;  // throw TestEnvError (command line + stderr) on a non-zero exit
};

// Runs argv[0] (absolute path or $PATH name) to completion, capturing stdout and stderr.
// Throws TestEnvError when it cannot be started, times out, or (with check) exits
// non-zero; the message holds the command line and stderr.
CommandResult RunCommand(const std::vector<std::string>& argv, const RunOptions& options = {});

// Shell-quotes argv for display ("a 'b c'").
std::string QuoteCommandLine(const std::vector<std::string>& argv);

}  // namespace ro::testenv
