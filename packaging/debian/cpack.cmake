# The Debian package, built by `make package` (cpack -G DEB in the build
# folder). CPack installs the project with prefix /usr into a staging folder
# (DESTDIR, so /etc/rtgw lands in the package, never on this machine), runs
# dpkg-shlibdeps over the binaries for Depends, and adds the maintainer
# scripts of this folder: postinst makes the rtgw user and sets the env file's
# group; prerm stops the service; postrm removes what purge must.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME rtgw)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_CONTACT "rtgw maintainers <maintainers@users.noreply.b-seed-9abbd37f.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "self-hosted realtime gateway (Inngest Realtime protocol)")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/rtgw/rtgw")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "Backends mint short-lived signed subscription tokens, browsers open a\n\
WebSocket or an SSE stream with a token, and workers publish events over\n\
HTTP. rtgw speaks the Inngest Realtime wire protocol and adds lossless\n\
resume, origin checks, key rotation and named close reasons. This package\n\
runs it as a systemd service configured by /etc/rtgw/rtgw.env.")
# Depends: computed by dpkg-shlibdeps from what the binary links (libssl,
# civetweb, libsodium, jansson, hiredis, libc), plus adduser for postinst.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_LIST_DIR}/conffiles ${CMAKE_CURRENT_LIST_DIR}/postinst
    ${CMAKE_CURRENT_LIST_DIR}/prerm ${CMAKE_CURRENT_LIST_DIR}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# /usr/share/doc/rtgw/{copyright,changelog.Debian.gz}, which Debian requires.
configure_file(${CMAKE_CURRENT_LIST_DIR}/changelog.in ${CMAKE_CURRENT_BINARY_DIR}/changelog @ONLY)
set(rt_changelog ${CMAKE_CURRENT_BINARY_DIR}/changelog.Debian.gz)
add_custom_command(OUTPUT ${rt_changelog}
  COMMAND gzip -9nc ${CMAKE_CURRENT_BINARY_DIR}/changelog > ${rt_changelog}
  DEPENDS ${CMAKE_CURRENT_BINARY_DIR}/changelog)
add_custom_target(rt_changelog ALL DEPENDS ${rt_changelog})
install(FILES ${CMAKE_CURRENT_LIST_DIR}/copyright ${rt_changelog}
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

include(CPack)
