# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
#
# Debian packages, one per install component (cpack -G DEB):
#   libfaiss-ehi-dev   (dev)    headers, the static libraries (faiss_ehi,
#                               the drop-in and, when built, the LibTorch
#                               trainer), the CMake package and faiss_ehi.pc
#   faiss-ehi-tools    (tools)  ehi_train and the demo/benchmark programs
#   python3-faiss-ehi  (python) the Python package for Debian's python3
# The gpu component (faiss_ehi::gpu) is left out: its users need a CUDA
# toolkit that no Debian package provides here.
#
# The packages are meant for the prefix /usr; scripts/deb_check.sh
# re-configures the build tree with it (GNUInstallDirs then picks the
# multiarch libdir, contrib/python Debian's dist-packages), runs
#   cpack --config build/CPackConfig.cmake -B build/debs
# and configures the tree back. Included last by CMakeLists.txt, so that
# every install() rule exists.

set(FAISS_EHI_DEB_COMPONENTS dev tools python)

# An install() rule without COMPONENT lands in "Unspecified", which no
# package ships: fail here instead of shipping packages missing files.
get_cmake_property(_faiss_ehi_components COMPONENTS)
set(_faiss_ehi_unknown ${_faiss_ehi_components})
list(REMOVE_ITEM _faiss_ehi_unknown ${FAISS_EHI_DEB_COMPONENTS} gpu)
if(_faiss_ehi_unknown)
  message(FATAL_ERROR "install() rules in the component(s) "
    "'${_faiss_ehi_unknown}', which no Debian package takes: give them "
    "COMPONENT dev, tools, python or gpu (cmake/packaging.cmake)")
endif()
# Only the components this build installs anything into (no Python
# package without python3-faiss, for example).
set(CPACK_COMPONENTS_ALL ${FAISS_EHI_DEB_COMPONENTS})
foreach(_c IN LISTS FAISS_EHI_DEB_COMPONENTS)
  if(NOT _c IN_LIST _faiss_ehi_components)
    list(REMOVE_ITEM CPACK_COMPONENTS_ALL ${_c})
  endif()
endforeach()

# Debian policy: each package carries its licence as
# /usr/share/doc/<package>/copyright.
set(_faiss_ehi_deb_name_dev libfaiss-ehi-dev)
set(_faiss_ehi_deb_name_tools faiss-ehi-tools)
set(_faiss_ehi_deb_name_python python3-faiss-ehi)
foreach(_c IN LISTS CPACK_COMPONENTS_ALL)
  install(FILES ${PROJECT_SOURCE_DIR}/LICENSE
    DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${_faiss_ehi_deb_name_${_c}}
    RENAME copyright COMPONENT ${_c})
endforeach()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME faiss-ehi)
set(CPACK_PACKAGE_VENDOR "faiss-ehi authors")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_DEB_COMPONENT_INSTALL ON)
# one package per component (components are not grouped)
set(CPACK_COMPONENTS_GROUPING IGNORE)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(FAISS_EHI_DEB_MAINTAINER "faiss-ehi authors <dev@faiss-ehi>" CACHE STRING
  "Maintainer field of the Debian packages")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${FAISS_EHI_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# The install rules' paths are fixed when CMake runs: packages from a tree
# configured for another prefix would put the libraries in lib/ and the
# Python module where Debian's python3 does not look. cmake/deb/
# CPackProjectConfig.cmake refuses to build them then.
set(CPACK_FAISS_EHI_CONFIGURED_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(CPACK_PROJECT_CONFIG_FILE
  ${CMAKE_CURRENT_LIST_DIR}/deb/CPackProjectConfig.cmake)

# ------------------------------------------------------------------ dev
set(CPACK_DEBIAN_DEV_PACKAGE_NAME ${_faiss_ehi_deb_name_dev})
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
# Faiss 1.7.3 exactly, here and for python3-faiss: the drop-in wraps Faiss
# 1.7.3's mangled symbols (CMakeLists.txt), the Python module its ABI.
# faiss_ehi.pc and the CMake package link Faiss with -lblas -llapack;
# OpenBLAS first, as the project needs it (docs/DESIGN.md, "BLAS").
set(_dev_depends
  "libfaiss-dev (>= 1.7.3), libfaiss-dev (<< 1.7.4~)"
  "libopenblas-dev | libblas-dev"
  "libopenblas-dev | liblapack-dev")
if(TARGET faiss_ehi_trainer)
  # faiss_ehi::trainer links LibTorch and (link-only) glog.
  list(APPEND _dev_depends "libtorch-dev (>= ${Torch_VERSION_MAJOR}.${Torch_VERSION_MINOR})"
    libgoogle-glog-dev libgflags-dev)
endif()
list(JOIN _dev_depends ", " CPACK_DEBIAN_DEV_PACKAGE_DEPENDS)
set(CPACK_DEBIAN_DEV_PACKAGE_SUGGESTS "cmake, pkgconf")
set(CPACK_DEBIAN_DEV_DESCRIPTION
  "EHI learned tree index for Faiss - development files
faiss-ehi brings EHI (End-to-end Learning of Hierarchical Index for
Efficient Dense Retrieval) to Faiss 1.7.3: a learned B-ary tree is the
coarse quantizer of a Faiss IVF index.

This package holds the headers, the static libraries faiss_ehi,
faiss_ehi_dropin (the C++ drop-in for faiss::index_factory and
read_index) and, when built, faiss_ehi_trainer (LibTorch), the CMake
package (find_package(faiss_ehi)) and pkg-config's faiss_ehi.pc.
MIT licence.")

# ---------------------------------------------------------------- tools
set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME ${_faiss_ehi_deb_name_tools})
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION science)
# Faiss is linked statically; the shared libraries the programs load
# (OpenBLAS/BLAS, glog, gflags, LibTorch, zlib, libgomp) come from
# dpkg-shlibdeps.
set(CPACK_DEBIAN_TOOLS_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SUGGESTS dataset-fashion-mnist)
set(CPACK_DEBIAN_TOOLS_DESCRIPTION
  "EHI learned tree index for Faiss - training and benchmark programs
faiss-ehi brings EHI (End-to-end Learning of Hierarchical Index for
Efficient Dense Retrieval) to Faiss 1.7.3.

This package holds ehi_train (learns an EHI index with LibTorch, when
built), ehi_demo and the benchmark programs bench_*.
MIT licence.")

# --------------------------------------------------------------- python
# Only where the Python package is built (its version is known then).
if("python" IN_LIST CPACK_COMPONENTS_ALL)
  set(CPACK_DEBIAN_PYTHON_PACKAGE_NAME ${_faiss_ehi_deb_name_python})
  set(CPACK_DEBIAN_PYTHON_PACKAGE_SECTION python)
  # No dpkg-shlibdeps: the module needs python3-faiss's _swigfaiss.so by its
  # SONAME, which no library directory holds, so dpkg-shlibdeps would fail.
  # The module is built for this python3 (its file name carries the ABI) and
  # against python3-faiss; the C and C++ runtimes come with python3-faiss.
  set(_py_mm
    "${FAISS_EHI_PYTHON_VERSION_MAJOR}.${FAISS_EHI_PYTHON_VERSION_MINOR}")
  math(EXPR _py_next_minor "${FAISS_EHI_PYTHON_VERSION_MINOR} + 1")
  set(_py_depends
    "python3 (>= ${_py_mm}~)"
    "python3 (<< ${FAISS_EHI_PYTHON_VERSION_MAJOR}.${_py_next_minor})"
    "python3-faiss (>= 1.7.3), python3-faiss (<< 1.7.4~)"
    python3-numpy)
  if(TARGET faiss_ehi_trainer)
    # Debian's LibTorch runtime is libtorchX.Y; it brings glog and gflags,
    # which the trainer also loads.
    list(APPEND _py_depends
      "libtorch${Torch_VERSION_MAJOR}.${Torch_VERSION_MINOR}")
  endif()
  list(JOIN _py_depends ", " CPACK_DEBIAN_PYTHON_PACKAGE_DEPENDS)
  # Removing the package also removes the bytecode Python wrote next to it.
  if(FAISS_EHI_PYTHON_PACKAGE_DIR)
    set(FAISS_EHI_PYTHON_PACKAGE_ABSDIR
      "${CPACK_PACKAGING_INSTALL_PREFIX}/${FAISS_EHI_PYTHON_PACKAGE_DIR}")
    configure_file(${CMAKE_CURRENT_LIST_DIR}/deb/python-prerm.in
      ${CMAKE_BINARY_DIR}/deb/python/prerm @ONLY
      FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE
        GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
    set(CPACK_DEBIAN_PYTHON_PACKAGE_CONTROL_EXTRA
      ${CMAKE_BINARY_DIR}/deb/python/prerm)
  endif()
  set(CPACK_DEBIAN_PYTHON_DESCRIPTION
    "EHI learned tree index for Faiss - Python 3 module
faiss-ehi brings EHI (End-to-end Learning of Hierarchical Index for
Efficient Dense Retrieval) to Faiss 1.7.3.

This package holds the Python module faiss_ehi for Debian's python3 and
python3-faiss: faiss_ehi.index_factory, read_index and write_index return
and take ordinary faiss objects.
MIT licence.")
endif()

include(CPack)
