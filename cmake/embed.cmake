# cmake -DIN=<file> -DOUT=<header> -DNAME=<symbol> -P embed.cmake
# Turns a text file into a C header holding it as a NUL-terminated char array.
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT} "/* generated from ${IN}; do not edit */\nstatic const char ${NAME}[] = {${bytes}0x00};\n")
