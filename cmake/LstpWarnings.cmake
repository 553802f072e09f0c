# Warnings for our own targets only; third-party headers come in as SYSTEM.
function(lstp_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow=local
                                           -Wno-missing-field-initializers
                                           # g++ 12 false positive on every Asio coroutine frame
                                           -Wno-mismatched-new-delete)
  if(LSTP_SANITIZE)
    # With ASan, g++ 12 reports maybe-uninitialized inside Beast's HTTP parser
    # (boost::optional in basic_parser::do_field): a known false positive of
    # its instrumented flow analysis, not seen in the normal build.
    target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized)
  endif()
  if(LSTP_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
