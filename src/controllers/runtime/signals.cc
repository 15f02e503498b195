#include "signals.h"

#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <cstdlib>
#include <ctime>

#include <nlohmann/json.hpp>

#include "ro/common/log.h"

namespace ro::runtime {

namespace {

// How often the watcher thread looks at its stop_token while no signal arrives: the
// bound on how long ~ShutdownSignalWatcher waits.
constexpr long kPollNanos = 100'000'000;  // 100 ms

sigset_t ShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

const char* SignalName(int signal) { return signal == SIGTERM ? "SIGTERM" : "SIGINT"; }

}  // namespace

void BlockShutdownSignals() {
  const sigset_t set = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

ShutdownSignalWatcher::ShutdownSignalWatcher(std::stop_source on_signal,
                                             std::chrono::milliseconds grace)
    : on_signal_(std::move(on_signal)),
      grace_(grace),
      thread_([this](std::stop_token stop) { Watch(stop); }) {}

ShutdownSignalWatcher::~ShutdownSignalWatcher() {
  thread_.request_stop();
  thread_.join();
}

void ShutdownSignalWatcher::Watch(std::stop_token stop) {
  const sigset_t set = ShutdownSignals();
  const timespec poll{0, kPollNanos};
  const log::Logger log;
  bool signalled = false;
  std::chrono::steady_clock::time_point deadline{};
  while (!stop.stop_requested()) {
    const int signal = sigtimedwait(&set, nullptr, &poll);
    if (signal == SIGTERM || signal == SIGINT) {
      if (signalled) {
        log.Error("second signal received; exiting immediately", {{"signal", SignalName(signal)}});
        std::_Exit(1);
      }
      signalled = true;
      deadline = std::chrono::steady_clock::now() + grace_;
      log.Info("signal received; shutting down gracefully",
               {{"signal", SignalName(signal)},
                {"gracefulShutdownTimeoutMs", grace_.count()}});
      on_signal_.request_stop();
    }
    if (signalled && std::chrono::steady_clock::now() >= deadline) {
      log.Error("graceful shutdown did not finish in time; exiting",
                {{"gracefulShutdownTimeoutMs", grace_.count()}});
      std::_Exit(1);
    }
  }
}

}  // namespace ro::runtime
