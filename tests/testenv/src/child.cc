#include "child.h"

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <set>

#include "ro/testenv/paths.h"

extern char** environ;

namespace ro::testenv::internal {
namespace {

// In the child: report errno to the parent through the exec-error pipe and exit.
// 127 is the shell's "command not found" status.
[[noreturn]] void FailExec(int error_fd) {
  int err = errno;
  ssize_t ignored = ::write(error_fd, &err, sizeof err);
  (void)ignored;
  ::_exit(127);
}

}  // namespace

ExecPlan::ExecPlan(const std::vector<std::string>& argv,
                   const std::vector<std::pair<std::string, std::string>>& env,
                   std::string working_dir)
    : args_(argv), working_dir_(std::move(working_dir)) {
  if (args_.empty()) args_.emplace_back("");
  program_ = args_[0];
  try {
    program_ = FindExecutable(args_[0], "").string();
  } catch (const std::exception&) {
    // Leave it as given: execve fails with ENOENT and the caller reports it with the
    // command line, which is the clearer message.
  }
  std::set<std::string> overridden;
  for (const auto& [name, value] : env) {
    env_.push_back(name + "=" + value);
    overridden.insert(name);
  }
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry(*e);
    std::string name = entry.substr(0, entry.find('='));
    if (!overridden.contains(name)) env_.push_back(std::move(entry));
  }
  for (auto& a : args_) argv_.push_back(a.data());
  argv_.push_back(nullptr);
  for (auto& e : env_) envp_.push_back(e.data());
  envp_.push_back(nullptr);
}

void ExecPlan::ExecInChild(pid_t parent, int stdin_fd, int stdout_fd, int stderr_fd,
                           int error_fd) const {
  auto fail = [error_fd]() { FailExec(error_fd); };
  // Own process group: Stop() signals the whole group, and a terminal's Ctrl-C aimed at
  // the harness does not reach the server first.
  ::setpgid(0, 0);
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail();
  // The parent may have died between fork() and prctl(): then nobody would kill us.
  if (::getppid() != parent) ::_exit(127);
  // Dispositions set to SIG_IGN and the blocked mask survive exec: reset them so the
  // server handles SIGTERM as it normally would.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    ::sigaction(sig, &dfl, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (::dup2(stdin_fd, STDIN_FILENO) < 0 || ::dup2(stdout_fd, STDOUT_FILENO) < 0 ||
      ::dup2(stderr_fd, STDERR_FILENO) < 0) {
    fail();
  }
  if (!working_dir_.empty() && ::chdir(working_dir_.c_str()) != 0) fail();
  ::execve(program_.c_str(), argv_.data(), envp_.data());
  FailExec(error_fd);
}

std::string ReadExecError(int fd) {
  int err = 0;
  ssize_t n;
  do {
    n = ::read(fd, &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  ::close(fd);
  if (n == static_cast<ssize_t>(sizeof err)) return std::strerror(err);
  return "";
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* name = ::strsignal(sig);
    return "killed by signal " + std::to_string(sig) + (name ? std::string(" (") + name + ")" : "");
  }
  return "wait status " + std::to_string(status);
}

}  // namespace ro::testenv::internal
