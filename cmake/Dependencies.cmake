# Every dependency comes from a Debian package (scripts/setup.sh installs them).
# Debian ships CMake configs for some, pkg-config files for others, and neither for
# libzookeeper-mt; each is found the way its package supports.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

find_package(CURL REQUIRED)                      # libcurl4-openssl-dev (CMake's FindCURL)
find_package(OpenSSL REQUIRED)                   # libssl-dev
find_package(nlohmann_json 3.11 REQUIRED)        # nlohmann-json3-dev
find_package(yaml-cpp REQUIRED)                  # libyaml-cpp-dev, target yaml-cpp
find_package(fmt REQUIRED)                       # libfmt-dev
find_package(spdlog REQUIRED)                    # libspdlog-dev
find_package(CLI11 REQUIRED)                     # libcli11-dev
find_package(prometheus-cpp REQUIRED COMPONENTS core)  # prometheus-cpp-dev

# libnats-dev's CMake config is broken on bookworm: use its pkg-config file.
pkg_check_modules(NATS REQUIRED IMPORTED_TARGET libnats)
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)
pkg_check_modules(RE2 REQUIRED IMPORTED_TARGET re2)
# libcpp-httplib-dev: HTTP(S) for /metrics, probes and the audit webhook (built with OpenSSL).
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)

# libjemalloc-dev: the allocator of the kubesync binary (the pipeline parses, builds and
# frees a few JSON trees per object on many threads; jemalloc's thread caches cut its CPU
# per object by ~10 % against glibc's malloc, docs/kubesync.md "Performance"). Not with
# the sanitizers, which bring their own allocator.
option(RO_JEMALLOC "Link the kubesync binary with jemalloc (ignored with RO_SANITIZE/RO_TSAN)" ON)
if(RO_JEMALLOC AND NOT RO_SANITIZE AND NOT RO_TSAN)
  pkg_check_modules(JEMALLOC REQUIRED IMPORTED_TARGET jemalloc)
endif()

# libzookeeper-mt-dev has neither pkg-config nor CMake files.
find_path(ZOOKEEPER_INCLUDE_DIR zookeeper/zookeeper.h REQUIRED)
find_library(ZOOKEEPER_MT_LIBRARY zookeeper_mt REQUIRED)
add_library(ro_zookeeper INTERFACE)
target_include_directories(ro_zookeeper INTERFACE ${ZOOKEEPER_INCLUDE_DIR})
target_link_libraries(ro_zookeeper INTERFACE ${ZOOKEEPER_MT_LIBRARY})
target_compile_definitions(ro_zookeeper INTERFACE THREADED)

if(RO_BUILD_TESTS)
  find_package(GTest REQUIRED)                   # libgtest-dev, libgmock-dev
endif()
if(RO_BUILD_BENCH)
  find_package(benchmark REQUIRED)               # libbenchmark-dev
endif()
