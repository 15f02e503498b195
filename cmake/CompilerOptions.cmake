# Warnings, sanitizers and ccache for every target of the project.
# Targets opt in by linking the interface library ro_compile_options.

find_program(RO_CCACHE ccache)
if(RO_CCACHE)
  set(CMAKE_C_COMPILER_LAUNCHER ${RO_CCACHE})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${RO_CCACHE})
endif()

add_library(ro_compile_options INTERFACE)
target_compile_options(ro_compile_options INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Woverloaded-virtual -Wnull-dereference -Wimplicit-fallthrough
  $<$<BOOL:${RO_WERROR}>:-Werror>)

# Debug information of the sanitized builds (they are the test trees): line tables only
# (-g1) by default. Sanitizer reports and gdb backtraces keep file:line; a translation
# unit compiles 25-30 % faster than with -g (processor_stage.cc 6.6 -> 4.7 s,
# kube_reflector_test.cc 16.4 -> 12.4 s on this 2-core machine), which is minutes of a
# cold CI build. -DRO_SANITIZE_DEBUG_INFO=-g gives full debug information (variables).
set(RO_SANITIZE_DEBUG_INFO "-g1" CACHE STRING "Debug information flag of sanitized builds (-g1 or -g)")

if(RO_SANITIZE)
  # -O1: the sanitized test build compiles about a third faster than at -O2 on two cores
  # and still runs the suite quickly. GCC documents that the sanitizers make
  # -Wmaybe-uninitialized report false positives (seen in libstdc++'s <regex> and
  # <functional>), so that one warning is off in sanitized builds only.
  set(_ro_san -O1 ${RO_SANITIZE_DEBUG_INFO} -fsanitize=address,undefined -fno-omit-frame-pointer
      -fno-sanitize-recover=undefined -Wno-maybe-uninitialized)
  # Sanitize everything we compile (libraries, binaries, tests) so a spawned controller is
  # checked as strictly as the test that spawned it.
  add_compile_options(${_ro_san})
  add_link_options(-fsanitize=address,undefined)
endif()

if(RO_TSAN)
  if(RO_SANITIZE)
    message(FATAL_ERROR "RO_TSAN and RO_SANITIZE are exclusive: ThreadSanitizer cannot run with AddressSanitizer")
  endif()
  # ThreadSanitizer (scripts/tsan.sh runs the kube and kubesync tests with it). -O1 for
  # the same reason as above; the libraries we link (libcurl, cnats, hiredis) are not
  # instrumented, so races inside them are invisible, races in our code are not.
  set(_ro_tsan -O1 ${RO_SANITIZE_DEBUG_INFO} -fsanitize=thread -fno-omit-frame-pointer -Wno-maybe-uninitialized
      -Wno-tsan)
  add_compile_options(${_ro_tsan})
  add_link_options(-fsanitize=thread)
endif()
