# Warnings for our own targets only; third-party headers come in as SYSTEM.
function(lstp_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow=local
                                           -Wno-missing-field-initializers
                                           # g++ 12 false positive on every Asio coroutine frame
                                           -Wno-mismatched-new-delete)
  if(LSTP_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
