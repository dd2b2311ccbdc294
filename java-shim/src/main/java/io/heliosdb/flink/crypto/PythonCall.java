package io.heliosdb.flink.crypto;

import java.io.IOException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.LockSupport;

/**
 * One {@link PythonBridge} call in flight (or a Java task run on a worker): arguments in, result or
 * error out ({@link #await}, or {@link #get} with the typed error as its ExecutionException's cause).
 */
public final class PythonCall implements Future<Object> {
    Object[] args;
    final PythonBridge.Before before;
    final PythonBridge.After after;
    final Runnable task;
    private volatile boolean done;
    private volatile Thread waiter;
    private Object result;
    private Throwable error;

    PythonCall(Object[] args, PythonBridge.Before before, PythonBridge.After after) {
        this.args = args;
        this.before = before;
        this.after = after;
        this.task = null;
    }

    /** A Java task run on a worker ({@link PythonBridge#execute}). */
    PythonCall(Runnable task) {
        this.args = null;
        this.before = null;
        this.after = null;
        this.task = task;
    }

    void complete(Object r, Throwable e) {
        result = r;
        error = e;
        done = true;
        Thread w = waiter;
        if (w != null) {
            LockSupport.unpark(w);
        }
    }

    /** Waits (spinning first) until Python has answered; never abandons the call, since Python
     *  may be writing into the caller's buffers. */
    Object await(String op) throws IOException {
        boolean interrupted = false;
        long deadline = System.nanoTime() + PythonBridge.SPIN_NANOS;
        while (!done) {
            if (System.nanoTime() < deadline) {
                Thread.onSpinWait();
                continue;
            }
            waiter = Thread.currentThread();
            if (!done) {
                LockSupport.park(this);
                interrupted |= Thread.interrupted();
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        return outcome();
    }

    private Object outcome() throws IOException {
        if (error != null) {
            throw PythonErrors.translate(error);
        }
        return result;
    }

    @Override
    public boolean isDone() {
        return done;
    }

    /** Never: a call that started runs to its end. */
    @Override
    public boolean cancel(boolean mayInterruptIfRunning) {
        return false;
    }

    @Override
    public boolean isCancelled() {
        return false;
    }

    @Override
    public Object get() throws InterruptedException, ExecutionException {
        try {
            return get(Long.MAX_VALUE, TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The result; a failure as an ExecutionException whose cause is the typed IOException. */
    @Override
    public Object get(long timeout, TimeUnit unit) throws InterruptedException, ExecutionException, TimeoutException {
        long deadline = System.nanoTime() + unit.toNanos(timeout);
        while (!done) {
            waiter = Thread.currentThread();
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                throw new TimeoutException();
            }
            if (!done) {
                LockSupport.parkNanos(this, left);
            }
            if (Thread.interrupted()) {
                throw new InterruptedException();
            }
        }
        try {
            return outcome();
        } catch (IOException e) {
            throw new ExecutionException(e);
        }
    }
}
