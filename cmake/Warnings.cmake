# Warnings for our own code; -Werror with CUTOUT_WERROR (CI turns it on).
add_compile_options(-Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
  -Wpointer-arith -Wformat=2 -Wvla -Wno-unused-parameter
  # Error messages are deliberately cut to fixed-size buffers.
  -Wno-format-truncation)
if(CUTOUT_WERROR)
  add_compile_options(-Werror)
endif()
