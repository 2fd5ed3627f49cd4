/*
 * main.c - uzswapd's entry point. Everything else is in libuzswapd, so that
 * the tests link the same code; only the tests' kill point
 * (UZSWAPD_KILLPOINT, killpoint.h) is armed here, before anything runs.
 */
#include "config.h"

#include "lib/common/killpoint.h"
#include "uzswapd.h"

int main(int argc, char **argv)
{
	if (killpoint_arm_from_env("UZSWAPD_KILLPOINT"))
		return UZSWAPD_EXIT_USAGE;
	return uzswapd_main(argc, argv);
}
