// Free TCP ports on 127.0.0.1 for the servers the harness starts.
//
// Several test binaries run at once (ctest -j2), so "bind to port 0, read the port,
// close" is not enough: two processes could be handed the same port before either
// server binds it. A PortLease also holds an advisory lock (flock) on
// /tmp/ro-testenv-ports/<port>.lock for its lifetime; every harness process skips locked
// ports. The lock dies with the process, so a crash never leaks a reservation.
// Ports come from [kFirstPort, kLastPort), below Linux's default ephemeral range
// (32768-60999), so an outgoing connection's source port does not take them either.
#pragma once

#include <cstdint>

namespace ro::testenv {

// Lowest and one-past-highest port handed out: a range of well-known-free user ports
// below the kernel's ephemeral range (net.ipv4.ip_local_port_range 32768-60999).
inline constexpr std::uint16_t kFirstPort = 20000;
inline constexpr std::uint16_t kLastPort = 32000;

// One reserved port. Move-only; the reservation ends on destruction.
// Thread-safe: leases may be taken from several threads at once.
class PortLease {
 public:
  // Picks a random port in the range that is neither locked by another harness nor
  // bound on 127.0.0.1 right now. Throws TestEnvError when none is found after a few
  // hundred tries.
  PortLease();
  ~PortLease();
  PortLease(PortLease&& other) noexcept;
  PortLease& operator=(PortLease&&) = delete;
  PortLease(const PortLease&) = delete;
  PortLease& operator=(const PortLease&) = delete;

  std::uint16_t port() const { return port_; }

 private:
  std::uint16_t port_ = 0;
  int lock_fd_ = -1;  // flock'ed lock file, -1 after a move
};

}  // namespace ro::testenv
