package io.heliosdb.flink.crypto;

import org.apache.flink.core.fs.FileSystemFactory;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.ServiceLoader;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Flink's ServiceLoader finds exactly the schemes Python declares (Schemes is generated from them), once each. */
class SchemesTest {

    @Test
    void theServiceLoaderFindsExactlyTheDeclaredSchemesInOrder() {
        List<String> found = new ArrayList<>();
        for (FileSystemFactory f : ServiceLoader.load(FileSystemFactory.class)) {
            if (f instanceof EncryptedFileSystemFactory) {
                found.add(f.getScheme());
            }
        }
        assertEquals(Schemes.NAMES, found);
    }

    @Test
    void everySchemeWrapsTheSchemeAfterEncPlus() {
        for (String scheme : Schemes.NAMES) {
            assertEquals(scheme.substring("enc+".length()), EncryptedFileSystemFactory.innerScheme(scheme));
        }
        assertThrows(IllegalArgumentException.class, () -> EncryptedFileSystemFactory.innerScheme("s3"));
        assertThrows(IllegalArgumentException.class, () -> EncryptedFileSystemFactory.innerScheme("enc+"));
    }
}
