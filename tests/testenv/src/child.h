// Internal: fork/exec plumbing shared by Process and RunCommand.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

namespace ro::testenv::internal {

// Everything the child needs, prepared before fork() so that the child only makes
// async-signal-safe calls between fork and exec (the harness is multi-threaded).
class ExecPlan {
 public:
  ExecPlan(const std::vector<std::string>& argv,
           const std::vector<std::pair<std::string, std::string>>& env,
           std::string working_dir);

  const std::string& program() const { return program_; }

  // In the child only: new process group, PR_SET_PDEATHSIG(SIGKILL) bound to the
  // forking thread, default signal dispositions and an empty signal mask, fds 0/1/2
  // from stdin_fd/stdout_fd/stderr_fd, then execve. On failure writes errno to
  // error_fd (a CLOEXEC pipe) and _exits with 127. Never returns.
  [[noreturn]] void ExecInChild(pid_t parent, int stdin_fd, int stdout_fd, int stderr_fd,
                                int error_fd) const;

 private:
  std::string program_;                // resolved absolute path (or as given)
  std::vector<std::string> args_;      // storage for argv_
  std::vector<std::string> env_;       // storage for envp_, "NAME=value"
  std::vector<char*> argv_;            // null-terminated
  std::vector<char*> envp_;            // null-terminated
  std::string working_dir_;            // empty: inherit
};

// Reads the exec-error pipe after fork: returns "" when exec succeeded (EOF), else the
// strerror text of the child's errno. Closes fd.
std::string ReadExecError(int fd);

// Describes a wait status: "exit status 1", "killed by signal 9 (Killed)".
std::string DescribeWaitStatus(int status);

}  // namespace ro::testenv::internal
