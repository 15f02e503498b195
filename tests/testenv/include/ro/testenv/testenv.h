// Umbrella header of the test-server harness (tests/testenv, see its README.md).
#pragma once

#include "ro/testenv/errors.h"          // IWYU pragma: export
#include "ro/testenv/fault_proxy.h"     // IWYU pragma: export
#include "ro/testenv/kube_cluster.h"    // IWYU pragma: export
#include "ro/testenv/kube_node.h"       // IWYU pragma: export
#include "ro/testenv/nats_server.h"     // IWYU pragma: export
#include "ro/testenv/paths.h"           // IWYU pragma: export
#include "ro/testenv/ports.h"           // IWYU pragma: export
#include "ro/testenv/process.h"         // IWYU pragma: export
#include "ro/testenv/redis_server.h"    // IWYU pragma: export
#include "ro/testenv/s3_server.h"       // IWYU pragma: export
#include "ro/testenv/wait.h"            // IWYU pragma: export
#include "ro/testenv/zookeeper_server.h"  // IWYU pragma: export
