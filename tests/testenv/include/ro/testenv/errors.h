// Errors of the test-server harness (tests/testenv). Every failure of the harness is a
// TestEnvError, so a test that cannot get its servers fails with a readable reason
// (the server's command line and the tail of its log) instead of hanging.
#pragma once

#include <stdexcept>
#include <string>

namespace ro::testenv {

// A server could not be started, stopped or reached, a helper command failed, or a file
// of the harness could not be written. what() is the whole diagnosis: for a server that
// failed to start it holds the command line and the last lines of the server's log.
class TestEnvError : public std::runtime_error {
 public:
  explicit TestEnvError(const std::string& message) : std::runtime_error(message) {}
};

// WaitFor() gave up: the condition named in what() did not hold before the deadline.
class WaitTimeout : public TestEnvError {
 public:
  explicit WaitTimeout(const std::string& message) : TestEnvError(message) {}
};

}  // namespace ro::testenv
