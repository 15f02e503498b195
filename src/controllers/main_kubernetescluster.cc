// kubernetescluster-controller: checks the connection to every KubernetesCluster
// (assets.astronetes.io/v1alpha1; manual 5.2).
#include "kubernetescluster/kubernetescluster_controller.h"
#include "ro/runtime/manager.h"

int main(int argc, char** argv) {
  ro::controllers::KubernetesClusterOptions options;
  return ro::runtime::RunControllerMain(
      argc, argv,
      {.binary_name = "kubernetescluster-controller",
       .add_flags =
           [&options](ro::runtime::FlagSet& flags) {
             ro::controllers::AddKubernetesClusterFlags(flags, &options);
           },
       .setup = [&options](ro::runtime::Manager& manager) {
         ro::controllers::SetupKubernetesClusterController(manager, options);
       }});
}
