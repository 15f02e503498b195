// Local child processes kept running like a kubelet keeps containers running
// (restartPolicy Always with CrashLoopBackOff): the LocalRunner's launcher.
//
// Children are grouped (one group per LiveSynchronization). SetDesired() states what
// should run; one supervisor thread converges: it starts what is missing, restarts what
// exited (after a backoff that grows with consecutive restarts), stops what is no longer
// wanted (SIGTERM to the child's process group, SIGKILL after stop_grace), restarts a
// child whose spec changed, and probes readiness (TCP connect or HTTP GET on 127.0.0.1).
//
// Children cannot outlive the supervisor: each is forked by the supervisor thread with
// prctl(PR_SET_PDEATHSIG, SIGKILL) (the kernel kills it when that thread, i.e. the
// controller, dies: crash, SIGKILL), runs in its own process group (a terminal's Ctrl-C
// reaches the controller, which stops them in order), starts with an empty signal mask
// and default dispositions, and is stopped by the destructor. While it runs, its PID is
// in ChildSpec::pid_path (tests kill -9 it).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ro::kubesync::runner {

// How the supervisor decides that a running child is ready.
struct ReadinessProbe {
  enum class Kind { kNone, kTcp, kHttp };
  Kind kind = Kind::kNone;  // kNone: ready as soon as it runs
  std::uint16_t port = 0;   // on 127.0.0.1
  std::string path;         // kHttp: e.g. "/readyz"; ready on status 200

  bool operator==(const ReadinessProbe&) const = default;
};

// One child to keep running.
struct ChildSpec {
  std::string id;                     // unique within its group, e.g. "processor-0"
  std::vector<std::string> argv;      // argv[0]: absolute path of the program
  std::filesystem::path log_path;     // stdout and stderr are appended here
  std::filesystem::path pid_path;     // holds the PID while the child runs
  std::filesystem::path working_dir;  // empty: the supervisor's
  ReadinessProbe probe;
  // Opaque; a different revision restarts the child (e.g. the configuration hash).
  std::string revision;

  bool operator==(const ChildSpec&) const = default;
};

// What a child is doing now.
struct ChildState {
  std::string id;
  pid_t pid = 0;        // 0 while not running
  bool ready = false;
  int restarts = 0;     // consecutive restarts (reset once it ran for stable_after)
  std::string last_exit;  // "exit status 1", "killed by signal 9"; "" before any exit
  // While waiting to (re)start: how long until the next attempt.
  std::chrono::milliseconds next_start_in{0};
};

// The restart delay after `restarts` consecutive exits: initial * 2^(restarts-1),
// capped at max (the kubelet's CrashLoopBackOff shape: 10 s doubling to 5 min; ours is
// shorter because a local pipeline restarts in well under a second). 0 for restarts 0.
std::chrono::milliseconds RestartDelay(int restarts, std::chrono::milliseconds initial,
                                       std::chrono::milliseconds max);

struct SupervisorOptions {
  // First restart delay and its cap (RestartDelay).
  std::chrono::milliseconds initial_restart_delay{1000};
  std::chrono::milliseconds max_restart_delay{30000};
  // A child that ran this long before exiting restarts with the initial delay again
  // (kubelet: 10 min; a minute is plenty to tell a crash loop from a one-off exit).
  std::chrono::milliseconds stable_after{60000};
  // SIGTERM -> SIGKILL. kubesync components finish their in-flight batch and close their
  // HTTP server in about 2 s; 10 s leaves margin on a loaded machine.
  std::chrono::milliseconds stop_grace{10000};
  // Readiness probe period and per-probe timeout (local servers answer in microseconds).
  std::chrono::milliseconds probe_interval{1000};
  std::chrono::milliseconds probe_timeout{500};
  // Period of the supervision loop (reaping and starting); a change of the desired set
  // wakes it at once.
  std::chrono::milliseconds tick{100};
};

// Thread-safe: every method may be called from any thread.
class ProcessSupervisor {
 public:
  // Starts the supervisor thread. Throws std::invalid_argument for non-positive periods.
  explicit ProcessSupervisor(SupervisorOptions options = {});
  // Stops every child (SIGTERM, SIGKILL after stop_grace), then the thread.
  ~ProcessSupervisor();
  ProcessSupervisor(const ProcessSupervisor&) = delete;
  ProcessSupervisor& operator=(const ProcessSupervisor&) = delete;

  // Replaces the desired children of `group` (ids must be unique). Returns at once; the
  // supervisor thread converges.
  void SetDesired(const std::string& group, std::vector<ChildSpec> children);

  // The state of every desired child of `group`, in SetDesired order. Children being
  // stopped are not listed.
  std::vector<ChildState> Snapshot(const std::string& group) const;

  // Waits until no child of `group` outside its desired set is still running, at most
  // `timeout`. Returns true when that holds.
  bool WaitStopped(const std::string& group, std::chrono::milliseconds timeout) const;

  // SetDesired(group, {}) and WaitStopped(group, stop_grace + 2 s); then forgets the
  // group. Returns true when every child exited.
  bool StopGroup(const std::string& group);

 private:
  struct Child;
  struct Group;

  // The supervisor thread: reap, stop, start, probe, sleep one tick (or until woken).
  void Loop(std::stop_token stop);
  // The steps of one pass. REQUIRES: mu_ held.
  void ReapLocked();
  void StopUnwantedLocked(std::chrono::steady_clock::time_point now);
  void StartDueLocked(std::chrono::steady_clock::time_point now);
  bool GroupSettledLocked(const std::string& group) const;
  // Probes every running child without holding mu_ (a probe may take probe_timeout).
  void ProbeRunning();

  // Constant after construction.
  const SupervisorOptions options_;

  mutable std::mutex mu_;
  // Notified when the desired set changes (wakes the loop) and after every pass (wakes
  // WaitStopped).
  mutable std::condition_variable_any cv_;
  // Guarded by mu_.
  std::map<std::string, Group> groups_;
  bool stopping_ = false;  // the destructor runs: stop everything, then end the loop
  bool wake_ = false;      // the loop should run a pass now
  std::chrono::steady_clock::time_point next_probe_{};

  std::jthread thread_;  // last: forks every child; starts after everything above exists
};

}  // namespace ro::kubesync::runner
