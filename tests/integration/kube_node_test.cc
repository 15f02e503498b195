// A KubeCluster with a real node (tests/testenv/include/ro/testenv/kube_node.h): pods are
// scheduled, run by containerd + runc and end Succeeded or Failed with their exit code;
// a Service reaches its pod through kube-proxy; nothing is left behind afterwards.
// CTest labels: integration, cluster. Needs root (namespaces, mounts, iptables).
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ro/testenv/testenv.h"

namespace {
namespace fs = std::filesystem;
namespace te = ro::testenv;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

// Scheduling + sandbox + container start + exit on 2 busy cores: a few seconds; generous.
constexpr auto kPodDeadline = 120s;
constexpr auto kPoll = 500ms;

std::string PodYaml(const std::string& name, const std::string& image, const std::string& script,
                     const std::string& labels = "{}") {
  return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name + "\n  namespace: default\n  labels: " + labels +
         "\nspec:\n  restartPolicy: Never\n  automountServiceAccountToken: false\n  terminationGracePeriodSeconds: 1\n"
         "  containers:\n  - name: main\n    image: " + image +
         "\n    imagePullPolicy: Never\n    command: [\"/bin/sh\", \"-c\", \"" + script + "\"]\n";
}

class KubeNodeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) {
      skip_ = "needs root (namespaces, mounts, iptables)";
      return;
    }
    try {
      te::KubeClusterOptions options;
      options.name = "node";
      options.with_node = true;
      cluster_ = std::make_unique<te::KubeCluster>(options);
      const auto& t = cluster_->timings();
      const auto& n = cluster_->node().timings();
      std::cout << "[timing] cluster with node total: " << t.total.count() << " ms (kube-apiserver "
                << t.apiserver.count() << " ms, controller manager " << t.controller_manager.count() << " ms, node "
                << t.node.count() << " ms: namespaces " << n.namespaces.count() << " ms, containerd + images "
                << n.containerd.count() << " ms, kube-scheduler " << n.scheduler.count() << " ms, kubelet "
                << n.kubelet.count() << " ms, kube-proxy " << n.kube_proxy.count() << " ms, dnsmasq " << n.dns.count() << " ms)\n";
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }
  static void TearDownTestSuite() { cluster_.reset(); }

  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
  }

  static std::string Get(const std::string& pod, const std::string& jsonpath) {
    return cluster_->Kubectl({"get", "pod", pod, "-n", "default", "-o", "jsonpath=" + jsonpath});
  }
  // Waits until the pod's phase is Succeeded or Failed and returns it.
  static std::string WaitForEnd(const std::string& pod) {
    std::string phase;
    te::WaitFor(
        [&] {
          phase = Get(pod, "{.status.phase}");
          return phase == "Succeeded" || phase == "Failed";
        },
        kPodDeadline, "pod " + pod + " to end (last phase: " + phase + ")", kPoll);
    return phase;
  }

  static std::unique_ptr<te::KubeCluster> cluster_;
  static std::string setup_error_;
  static std::string skip_;
};
std::unique_ptr<te::KubeCluster> KubeNodeTest::cluster_;
std::string KubeNodeTest::setup_error_;
std::string KubeNodeTest::skip_;

TEST_F(KubeNodeTest, PodThatExitsZeroSucceeds) {
  auto start = std::chrono::steady_clock::now();
  cluster_->Kubectl({"apply", "-f", "-"}, PodYaml("ok", te::kBusyboxImage, "echo hello from the node; sleep 2"));
  te::WaitFor([&] { return Get("ok", "{.status.phase}") != "Pending"; }, kPodDeadline, "pod ok to start", kPoll);
  EXPECT_EQ(WaitForEnd("ok"), "Succeeded");
  std::cout << "[timing] pod apply -> Succeeded: "
            << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count()
            << " ms\n";
  EXPECT_EQ(Get("ok", "{.status.containerStatuses[0].state.terminated.exitCode}"), "0");
  EXPECT_EQ(Get("ok", "{.spec.nodeName}"), te::KubeNode::kNodeName);
  // Logs go apiserver -> kubelet through the host-side forwarder.
  EXPECT_THAT(cluster_->Kubectl({"logs", "ok", "-n", "default"}), HasSubstr("hello from the node"));
}

TEST_F(KubeNodeTest, PodThatExitsOneFailsWithExitCode1) {
  cluster_->Kubectl({"apply", "-f", "-"}, PodYaml("fails", te::kBusyboxImage, "echo failing; exit 1"));
  EXPECT_EQ(WaitForEnd("fails"), "Failed");
  EXPECT_EQ(Get("fails", "{.status.containerStatuses[0].state.terminated.exitCode}"), "1");
  EXPECT_EQ(Get("fails", "{.status.containerStatuses[0].state.terminated.reason}"), "Error");
}

TEST_F(KubeNodeTest, ImportedImageRuns) {
  te::TempDir work("image");
  fs::path archive = work.path() / "other.tar";
  te::MakeBusyboxImage(archive, "docker.io/ro-testenv/other:7", {"/bin/sh", "-c", "echo default command; exit 0"},
                       work.path() / "build");
  cluster_->ImportImage(archive);
  cluster_->Kubectl({"apply", "-f", "-"},
                    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: imported\n  namespace: default\nspec:\n"
                    "  restartPolicy: Never\n  automountServiceAccountToken: false\n  containers:\n  - name: main\n"
                    "    image: docker.io/ro-testenv/other:7\n    imagePullPolicy: Never\n");
  EXPECT_EQ(WaitForEnd("imported"), "Succeeded");
  EXPECT_THAT(cluster_->Kubectl({"logs", "imported", "-n", "default"}), HasSubstr("default command"));
}

TEST_F(KubeNodeTest, ServiceReachesItsPodThroughKubeProxy) {
  cluster_->Kubectl({"apply", "-f", "-"},
                    PodYaml("web", te::kBusyboxImage,
                            "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 8080 -h /www",
                            "{app: web}") +
                        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: default\nspec:\n"
                        "  selector: {app: web}\n  ports: [{port: 80, targetPort: 8080}]\n");
  te::WaitFor([&] { return Get("web", "{.status.phase}") == "Running"; }, kPodDeadline, "pod web Running", kPoll);
  std::string cluster_ip =
      cluster_->Kubectl({"get", "service", "web", "-n", "default", "-o", "jsonpath={.spec.clusterIP}"});
  // The endpoint may reach kube-proxy's rules a moment after the pod runs: retry inside.
  cluster_->Kubectl({"apply", "-f", "-"},
                    PodYaml("client", te::kBusyboxImage,
                            "for i in 1 2 3 4 5 6 7 8 9 10; do printf 'GET / HTTP/1.0\\\\r\\\\n\\\\r\\\\n' | nc -w 3 " +
                                cluster_ip + " 80 | grep -q hello-from-web && echo reached && exit 0; sleep 1; done; "
                                "exit 1"));
  EXPECT_EQ(WaitForEnd("client"), "Succeeded");
  EXPECT_THAT(cluster_->Kubectl({"logs", "client", "-n", "default"}), HasSubstr("reached"));
  // Cluster DNS: <service>.<namespace>.svc.cluster.local -> the ClusterIP (busybox's
  // nslookup has its own resolver; the static glibc one of nc/wget is not used here).
  cluster_->Kubectl({"apply", "-f", "-"},
                    PodYaml("dns", te::kBusyboxImage,
                            "for i in 1 2 3 4 5 6 7 8 9 10; do nslookup web.default.svc.cluster.local | grep -q " +
                                cluster_ip + " && echo resolved && exit 0; sleep 1; done; cat /etc/resolv.conf; exit 1"));
  EXPECT_EQ(WaitForEnd("dns"), "Succeeded") << cluster_->Kubectl({"logs", "dns", "-n", "default"});
  // kube-proxy's rules live in the node's network namespace only.
  EXPECT_THAT(cluster_->node().RunInNode({"iptables-save", "-t", "nat"}), HasSubstr("default/web"));
}

TEST_F(KubeNodeTest, PodReachesTheApiserverThroughServiceKubernetes) {
  // Default service account: its token is mounted. busybox has no TLS client, so send
  // plain HTTP: Go's TLS server answers that in plain text.
  cluster_->Kubectl({"apply", "-f", "-"},
                    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: incluster\n  namespace: default\nspec:\n"
                    "  restartPolicy: Never\n  containers:\n  - name: main\n    image: " +
                        std::string(te::kBusyboxImage) +
                        "\n    imagePullPolicy: Never\n    command: [\"/bin/sh\", \"-c\", \""
                        "test -s /var/run/secrets/kubernetes.io/serviceaccount/token && echo token-mounted; "
                        "for i in 1 2 3 4 5 6 7 8 9 10; do printf 'GET / HTTP/1.0\\\\r\\\\n\\\\r\\\\n' | "
                        "nc -w 3 $KUBERNETES_SERVICE_HOST $KUBERNETES_SERVICE_PORT | grep -q 'HTTPS server' && "
                        "echo apiserver-reached && exit 0; sleep 1; done; exit 1\"]\n");
  EXPECT_EQ(WaitForEnd("incluster"), "Succeeded");
  std::string logs = cluster_->Kubectl({"logs", "incluster", "-n", "default"});
  EXPECT_THAT(logs, HasSubstr("token-mounted"));
  EXPECT_THAT(logs, HasSubstr("apiserver-reached"));
}

TEST_F(KubeNodeTest, StopLeavesNoProcessCgroupOrNamespace) {
  pid_t init = cluster_->node().namespace_pid();
  ASSERT_GT(init, 0);
  std::string netns = fs::read_symlink("/proc/" + std::to_string(init) + "/ns/net").string();
  cluster_->Stop();
  EXPECT_NE(::kill(init, 0), 0) << "pid 1 of the node's namespaces survived";
  // No cgroup root of this process is left.
  for (const auto& hierarchy : fs::directory_iterator("/sys/fs/cgroup")) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(hierarchy.path(), ec)) {
      EXPECT_NE(entry.path().filename().string().rfind("ro-testenv-" + std::to_string(::getpid()) + "-", 0), 0u)
          << entry.path();
    }
  }
  // The node's network namespace is gone: no process is in it any more.
  for (const auto& proc : fs::directory_iterator("/proc")) {
    std::error_code ec;
    auto ns = fs::read_symlink(proc.path() / "ns/net", ec);
    if (!ec) {
      EXPECT_NE(ns.string(), netns) << "process " << proc.path() << " is still in the node's netns";
    }
  }
  cluster_.reset();
}

}  // namespace
