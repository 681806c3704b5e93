# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
# Read by cpack for each generator (CPACK_PROJECT_CONFIG_FILE, set in
# cmake/packaging.cmake).
if(CPACK_GENERATOR STREQUAL "DEB" AND
   NOT CPACK_FAISS_EHI_CONFIGURED_PREFIX MATCHES "^/usr/?$")
  message(FATAL_ERROR "the build tree is configured for the prefix "
    "'${CPACK_FAISS_EHI_CONFIGURED_PREFIX}', but the Debian packages install "
    "into /usr and need its layout (multiarch libdir, "
    "/usr/lib/python3/dist-packages): re-run cmake with "
    "-DCMAKE_INSTALL_PREFIX=/usr first, or use scripts/deb_check.sh")
endif()
