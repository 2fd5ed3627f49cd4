/*
 * macros.h - small helpers every part of uzswap may use.
 *
 * Private to uzswap.
 */
#ifndef UZSWAP_MACROS_H
#define UZSWAP_MACROS_H

/* Elements of the array @a (an array, not a pointer). */
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif /* UZSWAP_MACROS_H */
