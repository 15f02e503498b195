// ro-test-lease-holder: one leader-election candidate as its own process, for the
// hand-over integration test (tests/integration/kube_leader_election_test.cc).
//
//   ro-test-lease-holder --kubeconfig K --namespace NS --name LEASE --identity ID
//                        [--lease-duration S] [--renew-deadline S] [--retry-period S]
//
// Prints one line per election event on stdout (flushed at once), which the test reads:
//   new-leader <identity>      the observed holder changed
//   started-leading <identity> this process became leader
//   stopped-leading <identity> this process stopped leading (lost, or stopping)
//   exiting <identity> <code>  about to exit
// SIGTERM/SIGINT stop it cleanly: it stops leading, releases the lease (holderIdentity
// "") and exits 0. Losing the lease exits 1; bad arguments exit 2.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <map>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>

#include "ro/kube/client.h"
#include "ro/kube/config.h"
#include "ro/kube/leader_election.h"

namespace {

void Say(const std::string& line) {
  std::fputs((line + "\n").c_str(), stdout);
  std::fflush(stdout);
}

// Turns SIGTERM/SIGINT into a stop request. The signals are blocked in every thread
// (set before any thread starts) and received here with sigwait, so no async handler
// and no global state are needed.
class SignalStopper {
 public:
  explicit SignalStopper(std::stop_source stop) : stop_(std::move(stop)) {
    thread_ = std::jthread([this](std::stop_token own) { Wait(own); });
  }
  ~SignalStopper() {
    // Wake the sigwait with a signal to ourselves if we are leaving on our own.
    thread_.request_stop();
    pthread_kill(thread_.native_handle(), SIGUSR1);
  }

  static void BlockSignals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
  }

 private:
  void Wait(std::stop_token own) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    int sig = 0;
    while (!own.stop_requested()) {
      if (sigwait(&set, &sig) != 0) continue;
      if (sig == SIGTERM || sig == SIGINT) {
        stop_.request_stop();
        return;
      }
    }
  }

  std::stop_source stop_;
  std::jthread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  SignalStopper::BlockSignals();

  // "--flag value" pairs. (CLI11 would do, but GCC 12 -O2 warns inside its header.)
  std::map<std::string, std::string> args = {{"--lease-duration", "15"},
                                             {"--renew-deadline", "10"},
                                             {"--retry-period", "2"}};
  for (int i = 1; i + 1 < argc; i += 2) args[argv[i]] = argv[i + 1];
  for (const char* required : {"--kubeconfig", "--namespace", "--name", "--identity"}) {
    if (!args.contains(required) || (argc - 1) % 2 != 0) {
      std::fprintf(stderr,
                   "usage: %s --kubeconfig K --namespace NS --name LEASE --identity ID "
                   "[--lease-duration S] [--renew-deadline S] [--retry-period S]\n",
                   argv[0]);
      return 2;
    }
  }
  const std::string kubeconfig = args["--kubeconfig"];
  const std::string ns = args["--namespace"];
  const std::string name = args["--name"];
  const std::string identity = args["--identity"];
  double lease_duration_s = 0;
  double renew_deadline_s = 0;
  double retry_period_s = 0;
  try {
    lease_duration_s = std::stod(args["--lease-duration"]);
    renew_deadline_s = std::stod(args["--renew-deadline"]);
    retry_period_s = std::stod(args["--retry-period"]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bad duration: %s\n", e.what());
    return 2;
  }

  const auto ms = [](double s) {
    return std::chrono::milliseconds{static_cast<int64_t>(s * 1000)};
  };
  int code = 0;
  try {
    ro::kube::RestConfig config = ro::kube::LoadKubeconfigFile(kubeconfig);
    // One hung request must not outlast the renew deadline.
    config.timeout = std::min(config.timeout, ms(renew_deadline_s) / 2);
    ro::kube::DynamicClient client(config);

    std::stop_source stop;
    SignalStopper stopper(stop);
    bool lost = false;
    ro::kube::LeaderElectionConfig le;
    le.identity = identity;
    le.lease_duration = ms(lease_duration_s);
    le.renew_deadline = ms(renew_deadline_s);
    le.retry_period = ms(retry_period_s);
    le.release_on_cancel = true;
    le.on_started_leading = [&](std::stop_token leading) {
      Say("started-leading " + identity);
      std::mutex mu;
      std::condition_variable_any cv;
      std::unique_lock lock(mu);
      cv.wait(lock, leading, [] { return false; });
    };
    le.on_stopped_leading = [&] {
      Say("stopped-leading " + identity);
      lost = !stop.stop_requested();
    };
    le.on_new_leader = [](const std::string& leader) { Say("new-leader " + leader); };
    ro::kube::LeaderElector elector(ro::kube::NewLeaseLock(client, ns, name), le);
    elector.Run(stop.get_token());
    code = lost ? 1 : 0;
  } catch (const std::exception& e) {
    Say(std::string("error ") + e.what());
    code = 2;
  }
  Say("exiting " + identity + " " + std::to_string(code));
  return code;
}
