/*
 * thread.c - starting uzswapd's threads; see thread.h.
 */
#include "config.h"

#include "thread.h"

int thread_create(pthread_t *tid, const char *name, void *(*fn)(void *),
		  void *arg)
{
	pthread_attr_t attr;
	int ret;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, THREAD_STACK_SIZE);
	ret = -pthread_create(tid, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	if (ret == 0)
		pthread_setname_np(*tid, name);
	return ret;
}
