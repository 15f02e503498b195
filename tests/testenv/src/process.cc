#include "ro/testenv/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>

#include "child.h"
#include "ro/testenv/paths.h"

namespace ro::testenv {
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// How often Stop() checks whether the child has exited after SIGTERM: short, since
// most servers exit within tens of milliseconds and tests stop many of them.
constexpr auto kStopPollInterval = 10ms;
// LogTail() reads at most this many bytes from the end of the log (apiserver logs grow
// to megabytes; 40 lines fit easily).
constexpr std::streamoff kLogTailBytes = 64 * 1024;
// Readiness poll interval: servers here become ready in 0.03-5 s; 25 ms adds little
// latency and costs nothing measurable.
constexpr auto kReadyPollInterval = 25ms;

fs::path PidFile(pid_t pid) {
  std::string dir = EnvOr("RO_TESTENV_PIDDIR", "");
  if (dir.empty()) return {};
  return fs::path(dir) / std::to_string(pid);
}

// Exit state of a child without reaping it: nullopt while it runs.
std::optional<siginfo_t> PeekExit(pid_t pid) {
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    return std::nullopt;  // ECHILD: not ours (already reaped elsewhere); treat as running
  }
  if (info.si_pid == 0) return std::nullopt;
  return info;
}

std::string DescribeSiginfo(const siginfo_t& info) {
  if (info.si_code == CLD_EXITED) return "exit status " + std::to_string(info.si_status);
  const char* name = ::strsignal(info.si_status);
  return "killed by signal " + std::to_string(info.si_status) +
         (name ? std::string(" (") + name + ")" : "");
}

int OpenOrThrow(const fs::path& path, int flags, const std::string& what) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) throw TestEnvError("cannot open " + path.string() + " for " + what + ": " + std::strerror(errno));
  return fd;
}

}  // namespace

std::string QuoteCommandLine(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& arg : argv) {
    if (!out.empty()) out += ' ';
    bool plain = !arg.empty() && arg.find_first_not_of(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == std::string::npos;
    if (plain) {
      out += arg;
      continue;
    }
    out += '\'';
    for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    out += '\'';
  }
  return out;
}

Process::Process(ProcessOptions options) : options_(std::move(options)) {
  internal::ExecPlan plan(options_.argv, options_.env, options_.working_dir.string());
  int log_fd = OpenOrThrow(options_.log_path, O_WRONLY | O_CREAT | O_APPEND, "the log of " + options_.name);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int err_pipe[2];
  if (null_fd < 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    int err = errno;
    ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    throw TestEnvError("cannot start " + options_.name + ": " + std::strerror(err));
  }

  // The spawner thread forks, so PR_SET_PDEATHSIG is tied to it, and it lives exactly
  // as long as this object (see the header).
  spawner_ = std::jthread([this, &plan, log_fd, null_fd, err_pipe](std::stop_token stop) {
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid == 0) plan.ExecInChild(parent, null_fd, log_fd, log_fd, err_pipe[1]);
    int fork_errno = errno;
    ::close(err_pipe[1]);
    std::string error;
    if (pid < 0) {
      ::close(err_pipe[0]);
      error = std::string("fork: ") + std::strerror(fork_errno);
    } else {
      fs::path pid_file = PidFile(pid);
      if (!pid_file.empty()) {
        try {
          WriteFile(pid_file, QuoteCommandLine(options_.argv) + "\n");
        } catch (const std::exception&) {
          // The PID dir is a safety net of scripts/test.sh; the server itself is fine.
        }
      }
      std::string exec_error = internal::ReadExecError(err_pipe[0]);
      if (!exec_error.empty()) error = "exec " + plan.program() + ": " + exec_error;
    }
    {
      std::lock_guard lock(mu_);
      pid_ = pid;
      spawn_error_ = error;
      spawned_ = true;
    }
    cv_.notify_all();
    std::unique_lock lock(mu_);
    cv_.wait(lock, stop, [] { return false; });  // park until Stop()/destruction
  });
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return spawned_; });
  }
  ::close(log_fd);
  ::close(null_fd);
  if (!spawn_error_.empty()) {
    std::string why = "could not be started: " + spawn_error_;
    Stop();  // reaps the child that failed to exec
    throw Failure(why);
  }
}

Process::~Process() { Stop(); }

std::string Process::CommandLine() const { return QuoteCommandLine(options_.argv); }

bool Process::Running() const { return !ExitDescription().has_value(); }

std::optional<std::string> Process::ExitDescription() const {
  std::lock_guard lock(mu_);
  if (wait_status_) return internal::DescribeWaitStatus(*wait_status_);
  if (pid_ <= 0) return "never started";
  if (auto info = PeekExit(pid_)) return DescribeSiginfo(*info);
  return std::nullopt;
}

void Process::Stop() noexcept { End(/*graceful=*/true); }

void Process::Kill() noexcept { End(/*graceful=*/false); }

void Process::End(bool graceful) noexcept {
  std::unique_lock lock(mu_);
  if (stopped_) return;
  stopped_ = true;
  pid_t pid = pid_;
  if (pid > 0 && !wait_status_) {
    if (graceful && !PeekExit(pid)) {
      ::kill(-pid, SIGTERM);
      auto deadline = Clock::now() + options_.stop_timeout;
      while (!PeekExit(pid) && Clock::now() < deadline) std::this_thread::sleep_for(kStopPollInterval);
    }
    // Whatever is left of the group (the leader after the grace period, or helpers it
    // spawned) is killed; the leader is still unreaped, so its PID cannot be reused yet.
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(pid, &status, 0);
    } while (r < 0 && errno == EINTR);
    if (r == pid) wait_status_ = status;
    fs::path pid_file = PidFile(pid);
    if (!pid_file.empty()) {
      std::error_code ec;
      fs::remove(pid_file, ec);
    }
  }
  lock.unlock();
  spawner_.request_stop();
  if (spawner_.joinable() && spawner_.get_id() != std::this_thread::get_id()) spawner_.join();
}

std::string TailOfFile(const fs::path& path, std::size_t lines) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  std::streamoff start = size > kLogTailBytes ? size - kLogTailBytes : 0;
  in.seekg(start);
  std::string text(static_cast<std::size_t>(size - start), '\0');
  in.read(text.data(), size - start);
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (!text.empty() && text.back() == '\n') text.pop_back();
  // Walk back over `lines` newlines; everything after the last one walked is the tail.
  std::size_t pos = text.size();
  for (std::size_t seen = 0; pos > 0;) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) return text;
    if (++seen == lines) return text.substr(pos + 1);
  }
  return text;
}

std::optional<std::chrono::microseconds> CpuTime(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return std::nullopt;
  // Fields after the command name (which may hold spaces, so start after its ')'):
  // state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime.
  const std::size_t close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(close + 1));
  std::string skip;
  for (int i = 0; i < 11; ++i) fields >> skip;
  long long utime = 0;
  long long stime = 0;
  if (!(fields >> utime >> stime)) return std::nullopt;
  static const long ticks_per_second = sysconf(_SC_CLK_TCK);
  return std::chrono::microseconds((utime + stime) * 1'000'000 / ticks_per_second);
}

std::string Process::LogTail(std::size_t lines) const { return TailOfFile(options_.log_path, lines); }

std::chrono::milliseconds Process::WaitUntilReady(const std::function<bool()>& probe,
                                                  std::chrono::milliseconds timeout, std::string_view what) const {
  auto start = Clock::now();
  auto deadline = start + timeout;
  std::string last_error;
  while (true) {
    try {
      if (probe()) return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
      last_error.clear();
    } catch (const std::exception& e) {
      last_error = e.what();
    }
    if (auto exit = ExitDescription()) throw Failure("exited (" + *exit + ") before it was ready");
    if (Clock::now() >= deadline) {
      throw Failure("was not ready after " + std::to_string(timeout.count()) + " ms (waiting for " +
                    std::string(what) + (last_error.empty() ? "" : "; last probe error: " + last_error) + ")");
    }
    std::this_thread::sleep_for(kReadyPollInterval);
  }
}

TestEnvError Process::Failure(std::string_view what) const {
  std::ostringstream msg;
  msg << options_.name << ' ' << what << "\n  command: " << CommandLine() << "\n  log "
      << options_.log_path.string() << " (last 40 lines):\n";
  std::string tail = LogTail(40);
  if (tail.empty()) tail = "(empty)";
  std::istringstream lines(tail);
  for (std::string line; std::getline(lines, line);) msg << "    | " << line << '\n';
  return TestEnvError(msg.str());
}

CommandResult RunCommand(const std::vector<std::string>& argv, const RunOptions& options) {
  internal::ExecPlan plan(argv, options.env, "");
  int in_pipe[2], out_pipe[2], err_pipe[2], exec_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0 ||
      ::pipe2(err_pipe, O_CLOEXEC) != 0 || ::pipe2(exec_pipe, O_CLOEXEC) != 0) {
    throw TestEnvError("cannot run " + QuoteCommandLine(argv) + ": pipe: " + std::strerror(errno));
  }
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) plan.ExecInChild(parent, in_pipe[0], out_pipe[1], err_pipe[1], exec_pipe[1]);
  int fork_errno = errno;
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ::close(exec_pipe[1]);
  if (pid < 0) {
    for (int fd : {in_pipe[1], out_pipe[0], err_pipe[0], exec_pipe[0]}) ::close(fd);
    throw TestEnvError("cannot run " + QuoteCommandLine(argv) + ": fork: " + std::strerror(fork_errno));
  }
  std::string exec_error = internal::ReadExecError(exec_pipe[0]);

  // Writing to a child that exited early raises SIGPIPE: block it on this thread and
  // swallow a pending one afterwards.
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);

  CommandResult result;
  std::size_t written = 0;
  int in_fd = in_pipe[1];
  if (options.stdin_data.empty() || !exec_error.empty()) {
    ::close(in_fd);
    in_fd = -1;
  } else {
    ::fcntl(in_fd, F_SETFL, O_NONBLOCK);
  }
  int out_fd = out_pipe[0], err_fd = err_pipe[0];
  auto deadline = Clock::now() + options.timeout;
  bool timed_out = false;
  while (out_fd >= 0 || err_fd >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left <= 0ms) {
      timed_out = true;
      break;
    }
    pollfd fds[3];
    nfds_t n = 0;
    if (out_fd >= 0) fds[n++] = {out_fd, POLLIN, 0};
    if (err_fd >= 0) fds[n++] = {err_fd, POLLIN, 0};
    if (in_fd >= 0) fds[n++] = {in_fd, POLLOUT, 0};
    int r = ::poll(fds, n, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == in_fd) {
        ssize_t w = ::write(in_fd, options.stdin_data.data() + written, options.stdin_data.size() - written);
        if (w > 0) written += static_cast<std::size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == options.stdin_data.size()) {
          ::close(in_fd);
          in_fd = -1;
        }
        continue;
      }
      char buf[16384];
      ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        (fds[i].fd == out_fd ? result.out : result.err).append(buf, static_cast<std::size_t>(got));
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        ::close(fds[i].fd);
        (fds[i].fd == out_fd ? out_fd : err_fd) = -1;
      }
    }
  }
  for (int fd : {in_fd, out_fd, err_fd}) {
    if (fd >= 0) ::close(fd);
  }
  if (timed_out) {
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  timespec zero{};
  while (::sigtimedwait(&pipe_set, nullptr, &zero) > 0) {
  }
  ::pthread_sigmask(SIG_SETMASK, &old_set, nullptr);

  std::string cmd = QuoteCommandLine(argv);
  if (!exec_error.empty()) throw TestEnvError("cannot run " + cmd + ": exec: " + exec_error);
  if (timed_out) {
    throw TestEnvError("timed out after " + std::to_string(options.timeout.count()) + " ms: " + cmd +
                       "\n  stderr: " + result.err);
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (options.check && result.exit_code != 0) {
    throw TestEnvError(cmd + " failed (" + internal::DescribeWaitStatus(status) + ")\n  stderr: " +
                       result.err + (result.out.empty() ? "" : "\n  stdout: " + result.out));
  }
  return result;
}

}  // namespace ro::testenv
