// bucket-controller: checks the access to every Bucket (assets.astronetes.io/v1alpha1;
// manual 5.3).
#include "bucket/bucket_controller.h"
#include "ro/runtime/manager.h"

int main(int argc, char** argv) {
  ro::controllers::BucketOptions options;
  return ro::runtime::RunControllerMain(
      argc, argv,
      {.binary_name = "bucket-controller",
       .add_flags =
           [&options](ro::runtime::FlagSet& flags) {
             ro::controllers::AddBucketFlags(flags, &options);
           },
       .setup = [&options](ro::runtime::Manager& manager) {
         ro::controllers::SetupBucketController(manager, options);
       }});
}
