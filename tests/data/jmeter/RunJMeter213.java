// Runs Debian's JMeter 2.13 (`apt-get install jmeter`) under Java 17, for tests only.
//
// Debian's `jmeter` fails under Java 17 before loading any plan: the system XStream refuses
// JMeter's classes (ForbiddenClassException: org.apache.jmeter.save.ScriptWrapper). This launcher
// loads JMeter's properties, allows every type in JMeter's two XStream instances, then starts
// JMeter with the given arguments. Run it as a single-file source program (no javac step):
//
//   java -Djmeter.home=/usr/share/jmeter -cp "/usr/share/jmeter/bin/ApacheJMeter.jar:/usr/share/jmeter/lib/*:/usr/share/jmeter/lib/ext/*" \
//        tests/data/jmeter/RunJMeter213.java -n -t plan.jmx -l results.jtl -Jport=8000
//
// The target of perfstack's plan is JMeter 5.6; 2.13 reads the same .jmx format (1.2), has the same
// core elements and the functions the plan uses (__P, __Random, __V). It writes fewer CSV columns by
// default (no header, no URL): pass -Jjmeter.save.saveservice.print_field_names=true and friends.
// The JTL fixtures next to this file were written by it (see tests/test_loadtest_jmeter.py).
import com.thoughtworks.xstream.XStream;
import com.thoughtworks.xstream.security.AnyTypePermission;
import java.lang.reflect.Field;

public class RunJMeter213 {
    public static void main(String[] args) throws Exception {
        String home = System.getProperty("jmeter.home", "/usr/share/jmeter");
        org.apache.jmeter.util.JMeterUtils.setJMeterHome(home);
        org.apache.jmeter.util.JMeterUtils.loadJMeterProperties(home + "/bin/jmeter.properties");
        Class<?> saveService = Class.forName("org.apache.jmeter.save.SaveService");
        for (String name : new String[] {"JMXSAVER", "JTLSAVER"}) {
            Field field = saveService.getDeclaredField(name);
            field.setAccessible(true);
            ((XStream) field.get(null)).addPermission(AnyTypePermission.ANY);
        }
        new org.apache.jmeter.JMeter().start(args);
    }
}
