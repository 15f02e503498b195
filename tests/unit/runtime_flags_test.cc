// The command line shared by the eight controller binaries (ro/runtime/options.h) and
// the license inspection (ro/runtime/license.h).
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "ro/runtime/license.h"
#include "ro/runtime/options.h"

namespace ro::runtime {
namespace {

using std::chrono::milliseconds;

// A fake environment.
std::function<std::string(const char*)> Env(std::map<std::string, std::string> values = {}) {
  return [values = std::move(values)](const char* name) {
    const auto it = values.find(name);
    return it == values.end() ? std::string() : it->second;
  };
}

ManagerOptions Parse(const std::vector<std::string>& args,
                     std::map<std::string, std::string> env = {}) {
  FlagSet none;
  return ParseFlags(args, "bucket-controller", none, Env(std::move(env)));
}

int ExitCodeOf(const std::vector<std::string>& args) {
  try {
    Parse(args);
  } catch (const FlagError& e) {
    return e.exit_code();
  }
  return -1;
}

TEST(FlagsTest, DefaultsMatchTheDocumentedOnes) {
  const ManagerOptions o = Parse({});
  EXPECT_EQ(o.binary_name, "bucket-controller");
  EXPECT_EQ(o.kubeconfig, "");
  EXPECT_EQ(o.ns, "");
  EXPECT_FALSE(o.leader_elect);
  EXPECT_EQ(o.leader_election_namespace, "resiliency-operator");
  EXPECT_EQ(o.leader_election_id, "bucket-controller");
  EXPECT_EQ(o.metrics_bind_address, ":8080");
  EXPECT_EQ(o.health_probe_bind_address, ":8081");
  EXPECT_EQ(o.log_level, "info");
  EXPECT_EQ(o.license_file, "/etc/resiliency-operator/license/license");
  EXPECT_EQ(o.max_concurrent_reconciles, 1);
  EXPECT_EQ(o.lease_duration, milliseconds{15'000});
  EXPECT_EQ(o.renew_deadline, milliseconds{10'000});
  EXPECT_EQ(o.retry_period, milliseconds{2'000});
}

TEST(FlagsTest, TheLeaseNamespaceDefaultsToThePodNamespace) {
  EXPECT_EQ(Parse({}, {{"POD_NAMESPACE", "ops"}}).leader_election_namespace, "ops");
  EXPECT_EQ(Parse({"--leader-election-namespace=x"}, {{"POD_NAMESPACE", "ops"}})
                .leader_election_namespace,
            "x");
}

TEST(FlagsTest, EveryCommonFlagIsParsed) {
  const ManagerOptions o = Parse({"--kubeconfig", "/tmp/kc", "--namespace=team-a", "--leader-elect",
                                  "--leader-election-id", "lease-1",
                                  "--leader-elect-lease-duration=30s",
                                  "--leader-elect-renew-deadline=20s",
                                  "--leader-elect-retry-period=1s500ms",
                                  "--metrics-bind-address=0",
                                  "--health-probe-bind-address=127.0.0.1:9000",
                                  "--log-level=debug", "--license-file=/l",
                                  "--max-concurrent-reconciles=4",
                                  "--graceful-shutdown-timeout=10s"});
  EXPECT_EQ(o.kubeconfig, "/tmp/kc");
  EXPECT_EQ(o.ns, "team-a");
  EXPECT_TRUE(o.leader_elect);
  EXPECT_EQ(o.leader_election_id, "lease-1");
  EXPECT_EQ(o.lease_duration, milliseconds{30'000});
  EXPECT_EQ(o.renew_deadline, milliseconds{20'000});
  EXPECT_EQ(o.retry_period, milliseconds{1'500});
  EXPECT_EQ(o.metrics_bind_address, "0");
  EXPECT_EQ(o.health_probe_bind_address, "127.0.0.1:9000");
  EXPECT_EQ(o.log_level, "debug");
  EXPECT_EQ(o.license_file, "/l");
  EXPECT_EQ(o.max_concurrent_reconciles, 4);
  EXPECT_EQ(o.graceful_shutdown_timeout, milliseconds{10'000});
}

TEST(FlagsTest, ABinaryAddsItsOwnFlagsWithDefaults) {
  FlagSet extra;
  milliseconds recheck{300'000};
  std::string mode = "fast";
  int count = 2;
  bool dry = false;
  extra.AddDuration("--recheck-interval", &recheck, "re-check period");
  extra.AddString("--mode", &mode, "a mode");
  extra.AddInt("--count", &count, "a count");
  extra.AddBool("--dry", &dry, "a switch");
  ParseFlags({"--recheck-interval=2s", "--count", "7", "--dry"}, "x-controller", extra, Env());
  EXPECT_EQ(recheck, milliseconds{2'000});
  EXPECT_EQ(mode, "fast");
  EXPECT_EQ(count, 7);
  EXPECT_TRUE(dry);

  FlagSet again;
  milliseconds untouched{300'000};
  again.AddDuration("--recheck-interval", &untouched, "re-check period");
  ParseFlags({}, "x-controller", again, Env());
  EXPECT_EQ(untouched, milliseconds{300'000});
}

TEST(FlagsTest, BadInputExitsWithTwoAndHelpWithZero) {
  EXPECT_EQ(ExitCodeOf({"--no-such-flag"}), 2);
  EXPECT_EQ(ExitCodeOf({"--log-level=verbose"}), 2);
  EXPECT_EQ(ExitCodeOf({"--max-concurrent-reconciles=0"}), 2);
  EXPECT_EQ(ExitCodeOf({"--graceful-shutdown-timeout=5"}), 2);  // no unit
  EXPECT_EQ(ExitCodeOf({"--leader-elect", "--leader-elect-renew-deadline=20s"}), 2);  // > lease
  EXPECT_EQ(ExitCodeOf({"--help"}), 0);
  try {
    Parse({"--help"});
  } catch (const FlagError& e) {
    EXPECT_NE(std::string(e.what()).find("--leader-elect"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("--metrics-bind-address"), std::string::npos);
  }
}

const auto kNow = std::chrono::system_clock::time_point{std::chrono::seconds{1'704'067'200}};

TEST(LicenseTest, AnOpaqueKeyIsValidAndFingerprinted) {
  const LicenseInfo info = InspectLicense("abc", kNow);
  EXPECT_EQ(info.state, LicenseInfo::State::kValid);
  // SHA-256("abc"), FIPS 180-2 appendix B.1.
  EXPECT_EQ(info.fingerprint,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(info.licensee, "");
  EXPECT_FALSE(info.expires_at);
}

TEST(LicenseTest, AYamlOrJsonLicenseReportsLicenseeAndExpiry) {
  const LicenseInfo yaml =
      InspectLicense("licensee: ACME Corp\nexpiresAt: 2030-01-01T00:00:00Z\nkey: x\n", kNow);
  EXPECT_EQ(yaml.state, LicenseInfo::State::kValid);
  EXPECT_EQ(yaml.licensee, "ACME Corp");
  ASSERT_TRUE(yaml.expires_at);

  const LicenseInfo json =
      InspectLicense(R"({"licensee":"ACME","expiresAt":"2023-06-01T00:00:00Z"})", kNow);
  EXPECT_EQ(json.state, LicenseInfo::State::kExpired);
  EXPECT_EQ(json.licensee, "ACME");
  EXPECT_NE(json.summary.find("2023-06-01"), std::string::npos);
}

TEST(LicenseTest, EmptyMalformedAndMissingLicensesAreReportedNotThrown) {
  EXPECT_EQ(InspectLicense(" \n", kNow).state, LicenseInfo::State::kEmpty);
  EXPECT_EQ(InspectLicense("expiresAt: next tuesday\n", kNow).state,
            LicenseInfo::State::kInvalid);
  const LicenseInfo missing = LoadLicenseFile("/nonexistent/ro-license", kNow);
  EXPECT_EQ(missing.state, LicenseInfo::State::kMissing);
  EXPECT_NE(missing.summary.find("/nonexistent/ro-license"), std::string::npos);
  EXPECT_EQ(ToString(missing.state), "missing");
}

}  // namespace
}  // namespace ro::runtime
