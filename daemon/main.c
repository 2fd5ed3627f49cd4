/*
 * main.c - uzswapd's entry point. Everything else is in libuzswapd, so that
 * the tests link the same code.
 */
#include "config.h"

#include "uzswapd.h"

int main(int argc, char **argv)
{
	return uzswapd_main(argc, argv);
}
