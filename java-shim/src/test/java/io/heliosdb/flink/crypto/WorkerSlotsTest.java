package io.heliosdb.flink.crypto;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** WorkerSlots: at most its limit of streams hold a slot at once, and given-back slots are taken again. */
class WorkerSlotsTest {

    @Test
    void noMoreStreamsThanTheLimitHoldASlot() {
        WorkerSlots one = new WorkerSlots(1);
        assertTrue(one.take());
        assertFalse(one.take(), "a second stream got the only slot");
        one.give();
        assertTrue(one.take(), "a given-back slot was not free again");
        assertFalse(new WorkerSlots(0).take(), "no slots: every stream writes on its caller's thread");
    }

    @Test
    void threadsTakingAndGivingAtOnceNeverExceedTheLimit() throws Exception {
        WorkerSlots two = new WorkerSlots(2);
        AtomicInteger inside = new AtomicInteger();
        AtomicInteger most = new AtomicInteger();
        AtomicInteger taken = new AtomicInteger();
        List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < 6; t++) {
            Thread th = new Thread(() -> {
                for (int i = 0; i < 20_000; i++) {
                    if (two.take()) {
                        most.accumulateAndGet(inside.incrementAndGet(), Math::max);
                        taken.incrementAndGet();
                        inside.decrementAndGet();
                        two.give();
                    }
                }
            });
            threads.add(th);
            th.start();
        }
        for (Thread th : threads) {
            th.join();
        }
        assertTrue(most.get() <= 2, "more streams than slots held one: " + most.get());
        assertTrue(taken.get() > 0);
        assertEquals(0, two.held(), "slots were lost or made");
    }
}
