# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
#
# cmake -DKEY= -DTAG= -DOUT= -DPLAIN= -DDROPIN= -P compare.cmake
# Runs the tutorial on KEY in the plain and the drop-in build and fails
# unless both write the same bytes (search results and index file).
foreach(build PLAIN DROPIN)
  execute_process(COMMAND ${${build}} ${KEY} ${OUT}/same_${build}_${TAG} 0.2
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${build} build failed on '${KEY}' (${rc})")
  endif()
endforeach()
foreach(ext results index)
  execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files
    ${OUT}/same_PLAIN_${TAG}.${ext} ${OUT}/same_DROPIN_${TAG}.${ext}
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "'${KEY}': the .${ext} files of the plain and the "
                        "drop-in build differ")
  endif()
  file(SIZE ${OUT}/same_PLAIN_${TAG}.${ext} size)
  message(STATUS "'${KEY}': .${ext} identical (${size} bytes)")
endforeach()
