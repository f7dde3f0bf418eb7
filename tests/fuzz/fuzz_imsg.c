/*
 * fuzz_imsg.c: arbitrary bytes as they would arrive from a peer process:
 * frame them with imsg_get() and run every message decoder on each frame.
 * A malformed frame or payload must be reported, never read out of bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imsg.h"
#include "proto.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imsgbuf	 ib;
	struct imsg	 m;
	uint16_t	 t;
	int		 rv;

	imsgbuf_init(&ib, -1);
	if (size > 0) {
		if ((ib.rbuf = malloc(size)) == NULL)
			return 0;
		memcpy(ib.rbuf, data, size);
		ib.rlen = ib.rcap = size;
	}
	while ((rv = imsg_get(&ib, &m)) == 1) {
		/* The frame's own type, then every other decoder too. */
		(void)proto_decode_any(&m);
		for (t = IMSG_CONF_BLOB; t <= IMSG_STATS_SET; t++) {
			m.hdr.type = t;
			(void)proto_decode_any(&m);
		}
		imsg_free(&m);
	}
	imsgbuf_clear(&ib);
	return 0;
}
