# byol_add_plugin(<target> SOURCES <files...> [LIBRARIES <libs...>] [OUTPUT_NAME <name>])
# Builds a byol-c plugin: a MODULE library with hidden visibility whose only export is
# byol_plugin_init. It sees the plugin headers but never links libbyol: the core reaches it
# through the host table. Used in-tree and, after `find_package(byol)`, out of tree.
function(byol_add_plugin target)
  cmake_parse_arguments(ARG "" "OUTPUT_NAME" "SOURCES;LIBRARIES" ${ARGN})
  add_library(${target} MODULE ${ARG_SOURCES})
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(ARG_OUTPUT_NAME)
    set_target_properties(${target} PROPERTIES OUTPUT_NAME ${ARG_OUTPUT_NAME})
  endif()
  if(TARGET byol::headers)
    target_link_libraries(${target} PRIVATE byol::headers)
  else()
    target_link_libraries(${target} PRIVATE byol_headers)
  endif()
  if(ARG_LIBRARIES)
    target_link_libraries(${target} PRIVATE ${ARG_LIBRARIES})
  endif()
  # An unresolved symbol in a plugin is a link error here, not a dlopen failure later.
  target_link_options(${target} PRIVATE "LINKER:--no-undefined")
endfunction()
