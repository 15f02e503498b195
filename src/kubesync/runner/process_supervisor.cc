#include "ro/kubesync/runner/process_supervisor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <system_error>
#include <utility>

#include <nlohmann/json.hpp>

#include "ro/common/backoff.h"
#include "ro/common/log.h"

namespace ro::kubesync::runner {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct ProcessSupervisor::Child {
  ChildSpec spec;
  bool desired = true;  // false: stop it, then forget it
  pid_t pid = 0;
  bool ready = false;
  bool term_sent = false;
  Clock::time_point kill_at{};      // SIGKILL after this once SIGTERM was sent
  Clock::time_point started_at{};
  Clock::time_point next_start{};   // earliest (re)start
  int restarts = 0;
  std::string last_exit;
};

struct ProcessSupervisor::Group {
  std::vector<std::string> order;  // desired ids, in SetDesired order
  std::vector<std::unique_ptr<Child>> children;  // desired and leaving ones
};

namespace {

const log::Logger& Log() {
  static const log::Logger kLog(json{{"runner", "local"}});
  return kLog;
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "wait status " + std::to_string(status);
}

// Connects to 127.0.0.1:port within `timeout`. Returns the connected socket or -1.
int ConnectLoopback(std::uint16_t port, milliseconds timeout) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    if (errno != EINPROGRESS) {
      ::close(fd);
      return -1;
    }
    pollfd p{fd, POLLOUT, 0};
    int error = 0;
    socklen_t length = sizeof error;
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1 ||
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0) {
      ::close(fd);
      return -1;
    }
  }
  return fd;
}

// The HTTP status of GET http://127.0.0.1:<port><path> (HTTP/1.0), 0 without an answer.
int HttpGetStatus(std::uint16_t port, const std::string& path, milliseconds timeout) {
  const int fd = ConnectLoopback(port, timeout);
  if (fd < 0) return 0;
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  int status = 0;
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
    std::string answer;
    char buffer[256];
    const auto deadline = Clock::now() + timeout;
    while (answer.find("\r\n") == std::string::npos && Clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      if (::poll(&p, 1, static_cast<int>(std::max<milliseconds::rep>(1, left.count()))) != 1) break;
      const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      answer.append(buffer, static_cast<std::size_t>(n));
    }
    // "HTTP/1.1 200 OK"
    const std::size_t space = answer.find(' ');
    if (answer.rfind("HTTP/", 0) == 0 && space != std::string::npos) {
      status = std::atoi(answer.c_str() + space + 1);
    }
  }
  ::close(fd);
  return status;
}

bool Probe(const ReadinessProbe& probe, milliseconds timeout) {
  switch (probe.kind) {
    case ReadinessProbe::Kind::kNone: return true;
    case ReadinessProbe::Kind::kTcp: {
      const int fd = ConnectLoopback(probe.port, timeout);
      if (fd < 0) return false;
      ::close(fd);
      return true;
    }
    case ReadinessProbe::Kind::kHttp: return HttpGetStatus(probe.port, probe.path, timeout) == 200;
  }
  return false;
}

void WritePidFile(const std::filesystem::path& path, pid_t pid) {
  if (path.empty()) return;
  std::ofstream out(path, std::ios::trunc);
  out << pid << "\n";
}

void RemovePidFile(const std::filesystem::path& path) {
  if (path.empty()) return;
  std::error_code ignored;
  std::filesystem::remove(path, ignored);
}

// Forks and execs `spec` (see the file comment of the header for the child's set-up).
// Everything the child needs is prepared before fork(): after it, only async-signal-safe
// calls. Returns the PID. Throws std::system_error when the log cannot be opened or fork
// fails; an exec failure shows up as the child's "exit status 127" and its log line.
pid_t Spawn(const ChildSpec& spec) {
  std::vector<char*> argv;
  argv.reserve(spec.argv.size() + 1);
  for (const std::string& arg : spec.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  const std::string exec_error = "cannot execute " + spec.argv.front() + "\n";
  const std::string working_dir = spec.working_dir.string();

  const int log_fd = ::open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) throw std::system_error(errno, std::generic_category(), "open " + spec.log_path.string());
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) {
    const int error = errno;
    ::close(log_fd);
    throw std::system_error(error, std::generic_category(), "open /dev/null");
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);  // the supervisor died before prctl took effect
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // the controller blocks SIGTERM/SIGINT
    struct sigaction default_action {};  // zeroed: sa_handler == SIG_DFL, no flags
    for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGQUIT}) ::sigaction(sig, &default_action, nullptr);
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::close_range(3, ~0U, 0);
    if (!working_dir.empty() && ::chdir(working_dir.c_str()) != 0) ::_exit(126);
    ::execv(argv[0], argv.data());
    [[maybe_unused]] const ssize_t ignored = ::write(STDERR_FILENO, exec_error.data(), exec_error.size());
    ::_exit(127);
  }
  const int fork_error = errno;
  ::close(log_fd);
  ::close(null_fd);
  if (pid < 0) throw std::system_error(fork_error, std::generic_category(), "fork");
  return pid;
}

void Signal(pid_t pid, int sig) {
  // The whole process group (the child made itself its leader), else the child alone.
  if (::kill(-pid, sig) != 0) ::kill(pid, sig);
}

}  // namespace

milliseconds RestartDelay(int restarts, milliseconds initial, milliseconds max) {
  if (restarts <= 0) return milliseconds{0};
  return common::ExponentialDelay(initial, restarts - 1, max);
}

ProcessSupervisor::ProcessSupervisor(SupervisorOptions options) : options_(options) {
  for (milliseconds period : {options_.initial_restart_delay, options_.max_restart_delay, options_.stop_grace,
                              options_.probe_interval, options_.probe_timeout, options_.tick}) {
    if (period.count() <= 0) throw std::invalid_argument("supervisor periods must be positive");
  }
  thread_ = std::jthread([this](std::stop_token stop) { Loop(stop); });
}

ProcessSupervisor::~ProcessSupervisor() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    wake_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void ProcessSupervisor::SetDesired(const std::string& group_name, std::vector<ChildSpec> children) {
  {
    std::lock_guard lock(mu_);
    Group& group = groups_[group_name];
    group.order.clear();
    const Clock::time_point now = Clock::now();
    for (auto& child : group.children) {
      if (!child->desired) continue;
      const auto wanted = std::find_if(children.begin(), children.end(),
                                       [&](const ChildSpec& s) { return s.id == child->spec.id; });
      if (wanted == children.end() || !(*wanted == child->spec)) child->desired = false;
    }
    for (ChildSpec& spec : children) {
      group.order.push_back(spec.id);
      const bool kept = std::any_of(group.children.begin(), group.children.end(), [&](const auto& c) {
        return c->desired && c->spec.id == spec.id;
      });
      if (kept) continue;
      auto child = std::make_unique<Child>();
      child->spec = std::move(spec);
      child->next_start = now;
      group.children.push_back(std::move(child));
    }
    wake_ = true;
  }
  cv_.notify_all();
}

std::vector<ChildState> ProcessSupervisor::Snapshot(const std::string& group_name) const {
  std::lock_guard lock(mu_);
  std::vector<ChildState> states;
  const auto found = groups_.find(group_name);
  if (found == groups_.end()) return states;
  const Clock::time_point now = Clock::now();
  for (const std::string& id : found->second.order) {
    for (const auto& child : found->second.children) {
      if (!child->desired || child->spec.id != id) continue;
      ChildState state;
      state.id = id;
      state.pid = child->pid;
      state.ready = child->ready;
      state.restarts = child->restarts;
      state.last_exit = child->last_exit;
      if (child->pid == 0 && child->next_start > now) {
        state.next_start_in = std::chrono::duration_cast<milliseconds>(child->next_start - now);
      }
      states.push_back(std::move(state));
    }
  }
  return states;
}

bool ProcessSupervisor::GroupSettledLocked(const std::string& group_name) const {
  const auto found = groups_.find(group_name);
  if (found == groups_.end()) return true;
  return std::none_of(found->second.children.begin(), found->second.children.end(),
                      [](const auto& c) { return !c->desired && c->pid != 0; });
}

bool ProcessSupervisor::WaitStopped(const std::string& group_name, milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return GroupSettledLocked(group_name); });
}

bool ProcessSupervisor::StopGroup(const std::string& group_name) {
  SetDesired(group_name, {});
  const bool stopped = WaitStopped(group_name, options_.stop_grace + milliseconds{2000});
  std::lock_guard lock(mu_);
  if (stopped) groups_.erase(group_name);
  return stopped;
}

void ProcessSupervisor::ReapLocked() {
  const Clock::time_point now = Clock::now();
  for (auto& [group_name, group] : groups_) {
    for (auto& child : group.children) {
      if (child->pid == 0) continue;
      int status = 0;
      const pid_t reaped = ::waitpid(child->pid, &status, WNOHANG);
      if (reaped == 0) continue;
      const pid_t pid = child->pid;
      child->last_exit = reaped == child->pid ? DescribeWaitStatus(status) : "exited (not reaped here)";
      child->pid = 0;
      child->ready = false;
      child->term_sent = false;
      RemovePidFile(child->spec.pid_path);
      if (!child->desired) {
        Log().Info("process stopped", {{"group", group_name}, {"child", child->spec.id}, {"pid", pid},
                                       {"exit", child->last_exit}});
        continue;
      }
      const bool was_stable = now - child->started_at >= options_.stable_after;
      child->restarts = was_stable ? 1 : child->restarts + 1;
      const milliseconds delay =
          RestartDelay(child->restarts, options_.initial_restart_delay, options_.max_restart_delay);
      child->next_start = now + delay;
      Log().Warn("process exited; restarting with backoff",
                 {{"group", group_name}, {"child", child->spec.id}, {"pid", pid}, {"exit", child->last_exit},
                  {"restarts", child->restarts}, {"restartInMs", delay.count()}});
    }
  }
}

void ProcessSupervisor::StopUnwantedLocked(Clock::time_point now) {
  for (auto& [group_name, group] : groups_) {
    for (auto& child : group.children) {
      if (stopping_) child->desired = false;
      if (child->desired || child->pid == 0) continue;
      if (!child->term_sent) {
        Signal(child->pid, SIGTERM);
        child->term_sent = true;
        child->kill_at = now + options_.stop_grace;
      } else if (now >= child->kill_at) {
        Log().Warn("process did not stop in time; killing it",
                   {{"group", group_name}, {"child", child->spec.id}, {"pid", child->pid}});
        Signal(child->pid, SIGKILL);
        child->kill_at = now + options_.stop_grace;
      }
    }
    // Forget what has stopped and is no longer wanted.
    std::erase_if(group.children, [](const auto& c) { return !c->desired && c->pid == 0; });
  }
}

void ProcessSupervisor::StartDueLocked(Clock::time_point now) {
  if (stopping_) return;
  for (auto& [group_name, group] : groups_) {
    for (auto& child : group.children) {
      if (!child->desired || child->pid != 0 || now < child->next_start) continue;
      // A replaced child (same id, old spec) must be gone first: it holds the same ports.
      const bool predecessor_alive = std::any_of(group.children.begin(), group.children.end(), [&](const auto& c) {
        return c.get() != child.get() && c->spec.id == child->spec.id && c->pid != 0;
      });
      if (predecessor_alive) continue;
      try {
        child->pid = Spawn(child->spec);
        child->started_at = now;
        WritePidFile(child->spec.pid_path, child->pid);
        Log().Info("process started", {{"group", group_name}, {"child", child->spec.id}, {"pid", child->pid},
                                       {"command", child->spec.argv}});
      } catch (const std::exception& e) {
        ++child->restarts;
        child->last_exit = std::string("cannot start: ") + e.what();
        child->next_start =
            now + RestartDelay(child->restarts, options_.initial_restart_delay, options_.max_restart_delay);
        Log().Error("cannot start process", {{"group", group_name}, {"child", child->spec.id}, {"error", e.what()}});
      }
    }
  }
}

void ProcessSupervisor::ProbeRunning() {
  struct Target {
    std::string group;
    std::string id;
    pid_t pid;
    ReadinessProbe probe;
    bool ready = false;
  };
  std::vector<Target> targets;
  {
    std::lock_guard lock(mu_);
    for (const auto& [group_name, group] : groups_) {
      for (const auto& child : group.children) {
        if (child->desired && child->pid != 0) targets.push_back({group_name, child->spec.id, child->pid, child->spec.probe});
      }
    }
  }
  for (Target& target : targets) target.ready = Probe(target.probe, options_.probe_timeout);
  std::lock_guard lock(mu_);
  for (const Target& target : targets) {
    const auto group = groups_.find(target.group);
    if (group == groups_.end()) continue;
    for (auto& child : group->second.children) {
      if (child->pid == target.pid && child->spec.id == target.id) child->ready = target.ready;
    }
  }
}

void ProcessSupervisor::Loop(std::stop_token stop) {
  while (true) {
    bool probe_due = false;
    {
      std::unique_lock lock(mu_);
      if (stop.stop_requested()) stopping_ = true;
      ReapLocked();
      const Clock::time_point now = Clock::now();
      StopUnwantedLocked(now);
      StartDueLocked(now);
      cv_.notify_all();  // WaitStopped() callers
      if (stopping_) {
        const bool alive = std::any_of(groups_.begin(), groups_.end(), [](const auto& g) {
          return std::any_of(g.second.children.begin(), g.second.children.end(),
                             [](const auto& c) { return c->pid != 0; });
        });
        if (!alive) return;
      }
      if (now >= next_probe_) {
        probe_due = true;
        next_probe_ = now + options_.probe_interval;
      }
    }
    if (probe_due) ProbeRunning();
    std::unique_lock lock(mu_);
    // Woken early by SetDesired or the destructor; exits are noticed within one tick.
    cv_.wait_for(lock, options_.tick, [this] { return wake_; });
    wake_ = false;
  }
}

}  // namespace ro::kubesync::runner
