# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
#
# Fails if the Python extension MODULE carries its own copy of (any part of)
# Faiss instead of using python3-faiss's _swigfaiss.so: a strong definition
# of a symbol in namespace faiss (mangled _ZN5faiss / _ZNK5faiss; faiss_ehi's
# own are _ZN9faiss_ehi) can only come from libfaiss.a. Inline functions
# and templates of the Faiss headers are weak (W/V) and do not count.
# contrib/python/CMakeLists.txt explains why one copy matters.
find_program(NM nm REQUIRED)
# Both symbol tables: the dynamic one, and the full one while not stripped.
execute_process(COMMAND ${NM} -D --defined-only ${MODULE}
  OUTPUT_VARIABLE _syms RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "nm failed on ${MODULE}")
endif()
execute_process(COMMAND ${NM} --defined-only ${MODULE}
  OUTPUT_VARIABLE _all ERROR_QUIET)
string(APPEND _syms "\n${_all}")
string(REGEX MATCH "[0-9a-f]+ [TDBR] _ZNK?5faiss[^\n]*" _hit "${_syms}")
if(_hit)
  message(FATAL_ERROR
    "${MODULE} defines a Faiss symbol (${_hit}): parts of libfaiss.a got "
    "linked in beside python3-faiss's _swigfaiss.so. Its Faiss objects "
    "would not share state (indexIVF_stats, ...) with Python Faiss.")
endif()
