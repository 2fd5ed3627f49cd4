# uz_system_dir.m4 - UZ_SYSTEM_DIR: where uzswap installs a file that
# another program looks for (configure.ac's systemd, udev and
# bash-completion directories). Needs uz_prefix (the prefix in force) and
# uz_system_prefix (the system's, from pkg-config) set before it.
#
# UZ_SYSTEM_DIR(NAME, WHAT, PKG, PKGVAR, PKGSUFFIX, UNDER-PREFIX)
# Defines and substitutes NAME: --with-NAME, else PKG's pkg-config
# variable PKGVAR followed by PKGSUFFIX under the system prefix, else
# UNDER-PREFIX (a make-time expression, so that `make prefix=` follows).
AC_DEFUN([UZ_SYSTEM_DIR], [
AC_ARG_WITH([$1],
	[AS_HELP_STRING([--with-$1=DIR], [$2 (default: pkg-config $3's with the system prefix, else under PREFIX)])],
	[], [with_$1=])
AS_IF([test -z "$with_$1"], [
	uz_dir=
	AS_IF([test -n "$uz_system_prefix" && test "x$uz_prefix" = "x$uz_system_prefix"],
		[uz_dir=`$PKG_CONFIG --variable=$4 $3 2>/dev/null`])
	AS_IF([test -n "$uz_dir"], [with_$1="$uz_dir$5"], [with_$1='$6'])])
AC_SUBST([$1], [$with_$1])
])
